//! A line diff of two versions of the configuration file, for the history view: the longest
//! common subsequence of lines after the common head and tail are taken off (an edit of one
//! camera leaves both long, so the table stays small).

use serde::Serialize;

/// What happened to one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Same,
    Add,
    Del,
}

/// One line of the diff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DiffLine<'a> {
    pub op: Op,
    pub text: &'a str,
}

/// Beyond this many cells the middle is shown as removed then added (a file rewritten whole).
const MAX_CELLS: usize = 4_000_000;

/// The lines of `new` against `old`, in order: unchanged, removed and added ones.
pub fn line_diff<'a>(old: &'a str, new: &'a str) -> Vec<DiffLine<'a>> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let head = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let tail = a[head..]
        .iter()
        .rev()
        .zip(b[head..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (ma, mb) = (&a[head..a.len() - tail], &b[head..b.len() - tail]);
    let line = |op, text| DiffLine { op, text };
    let mut out: Vec<DiffLine<'a>> = a[..head].iter().map(|t| line(Op::Same, *t)).collect();
    if ma.len().saturating_mul(mb.len()) > MAX_CELLS {
        out.extend(ma.iter().map(|t| line(Op::Del, *t)));
        out.extend(mb.iter().map(|t| line(Op::Add, *t)));
    } else {
        // lcs[i][j]: the longest common subsequence of ma[i..] and mb[j..]
        let w = mb.len() + 1;
        let mut lcs = vec![0u32; (ma.len() + 1) * w];
        for i in (0..ma.len()).rev() {
            for j in (0..mb.len()).rev() {
                lcs[i * w + j] = if ma[i] == mb[j] {
                    lcs[(i + 1) * w + j + 1] + 1
                } else {
                    lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < ma.len() || j < mb.len() {
            if i < ma.len() && j < mb.len() && ma[i] == mb[j] {
                out.push(line(Op::Same, ma[i]));
                i += 1;
                j += 1;
            } else if j < mb.len() && (i == ma.len() || lcs[i * w + j + 1] >= lcs[(i + 1) * w + j])
            {
                out.push(line(Op::Add, mb[j]));
                j += 1;
            } else {
                out.push(line(Op::Del, ma[i]));
                i += 1;
            }
        }
    }
    out.extend(a[a.len() - tail..].iter().map(|t| line(Op::Same, *t)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(d: &[DiffLine<'_>]) -> String {
        d.iter()
            .map(|l| {
                let c = match l.op {
                    Op::Same => ' ',
                    Op::Add => '+',
                    Op::Del => '-',
                };
                format!("{c}{}\n", l.text)
            })
            .collect()
    }

    #[test]
    fn added_removed_and_changed_lines() {
        let old = "a\nb\nc\nd\ne\n";
        let new = "a\nc\nD\nd\ne\nf\n";
        assert_eq!(show(&line_diff(old, new)), " a\n-b\n c\n+D\n d\n e\n+f\n");
        assert_eq!(show(&line_diff("", "x\n")), "+x\n");
        assert_eq!(show(&line_diff("x\ny\n", "x\ny\n")), " x\n y\n");
        assert_eq!(show(&line_diff("p\nq\n", "q\np\n")), "+q\n p\n-q\n");
    }
}
