//! The codebase's shape, checked on every `make test` (issue "One shape for the codebase"):
//!
//! - **No module cycle.** Within each folder of `src/` (and at the top), the modules that sit
//!   side by side use each other in one direction only: if `rules` uses `config`, nothing under
//!   `config` uses `rules`. A parent and its own children may use each other (a `mod.rs` re-exports
//!   what its files define, and the files use the folder's shared types): that is one module.
//! - **Files that each do one job.** No source file holds more than [`MAX_LINES`] lines of non-test
//!   code (a trailing `#[cfg(test)] mod tests { ... }` and files named `tests.rs` do not count).
//! - **Every folder says what it is.** Each `mod.rs` opens with a `//!` comment.
//!
//! A plain reader of the source text: `use` trees (with braces) and `crate::` / `super::` / `self::`
//! paths in code, comments and string literals left out. Good enough for a codebase that writes
//! its paths plainly; a path it cannot resolve to a module is ignored, never guessed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest a source file's non-test code may be.
const MAX_LINES: usize = 700;

#[test]
fn sibling_modules_use_each_other_in_one_direction_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = modules(&src);
    let names: BTreeSet<Vec<String>> = modules.iter().map(|m| m.path.clone()).collect();
    // For each parent module: edges between its children, with one place that makes each.
    let mut graphs: BTreeMap<Vec<String>, BTreeMap<(String, String), String>> = BTreeMap::new();
    for m in &modules {
        for (line, target) in uses(&m.code, &m.path) {
            let Some(to) = longest_module(&names, &target) else {
                continue;
            };
            let common = m.path.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common == m.path.len() || common == to.len() {
                continue; // an ancestor or a descendant: the same module, seen from inside
            }
            let parent = m.path[..common].to_vec();
            let edge = (m.path[common].clone(), to[common].clone());
            graphs
                .entry(parent)
                .or_default()
                .entry(edge)
                .or_insert_with(|| format!("{}:{}", m.file.display(), line));
        }
    }
    let mut cycles = Vec::new();
    for (parent, edges) in &graphs {
        if let Some(cycle) = find_cycle(edges) {
            let place = if parent.is_empty() {
                "crate".to_string()
            } else {
                parent.join("::")
            };
            let steps: Vec<String> = cycle
                .windows(2)
                .map(|w| {
                    let at = &edges[&(w[0].clone(), w[1].clone())];
                    format!("{} -> {} (at {at})", w[0], w[1])
                })
                .collect();
            cycles.push(format!("in {place}: {}", steps.join(", ")));
        }
    }
    assert!(
        cycles.is_empty(),
        "module cycles (make the dependency point one way):\n  {}",
        cycles.join("\n  ")
    );
}

#[test]
fn no_source_file_holds_more_than_700_lines_of_code() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut big: Vec<String> = modules(&src)
        .iter()
        .filter(|m| m.code_lines > MAX_LINES)
        .map(|m| format!("{} ({} lines)", m.file.display(), m.code_lines))
        .collect();
    big.sort();
    assert!(
        big.is_empty(),
        "files over {MAX_LINES} lines of non-test code (split them by job):\n  {}",
        big.join("\n  ")
    );
}

#[test]
fn every_folder_says_what_it_does() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let silent: Vec<String> = modules(&src)
        .iter()
        .filter(|m| m.is_folder && !m.path.is_empty())
        .filter(|m| !m.text.trim_start().starts_with("//!"))
        .map(|m| m.file.display().to_string())
        .collect();
    assert!(
        silent.is_empty(),
        "folders whose mod.rs does not open with a //! comment saying what the folder does and may use:\n  {}",
        silent.join("\n  ")
    );
}

/// Each folder's `mod.rs` lists in a `//! Uses (of the crate, besides its own folder): a, b.`
/// line the crate's top-level modules its files may name; a file naming another is out of
/// place (or the list is stale). This keeps the data flow one way: geometry <- events <- rules
/// <- config <- app / cli / api.
#[test]
fn every_folder_uses_only_what_its_mod_rs_lists() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = modules(&src);
    let names: BTreeSet<Vec<String>> = modules.iter().map(|m| m.path.clone()).collect();
    let mut wrong = Vec::new();
    for folder in modules.iter().filter(|m| m.is_folder && !m.path.is_empty()) {
        let Some(listed) = folder
            .text
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .find_map(|l| l.strip_prefix("//! Uses (of the crate, besides its own folder):"))
        else {
            wrong.push(format!("{}: no `//! Uses (of the crate, besides its own folder): ...` line among its first comments", folder.file.display()));
            continue;
        };
        let allowed: BTreeSet<&str> = listed
            .split([',', '.'])
            .map(str::trim)
            .filter(|s| !s.is_empty() && *s != "nothing")
            .collect();
        for m in modules.iter().filter(|m| m.path.starts_with(&folder.path)) {
            for (line, target) in uses(&m.code, &m.path) {
                let Some(to) = longest_module(&names, &target) else {
                    continue;
                };
                let top = to.first().map(String::as_str).unwrap_or_default();
                if top != folder.path[0] && !allowed.contains(top) {
                    wrong.push(format!(
                        "{}:{line} uses crate::{top}, which {} does not list",
                        m.file.display(),
                        folder.file.display()
                    ));
                }
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "uses outside a folder's list (move the code, or list the module if the flow allows it):\n  {}",
        wrong.join("\n  ")
    );
}

/// The checker itself, on a small made-up crate: a cycle is found, a parent-child pair is not one.
#[test]
fn the_checker_sees_a_cycle_and_nothing_else() {
    let mut edges = BTreeMap::new();
    edges.insert(("a".into(), "b".into()), "x".into());
    edges.insert(("b".into(), "c".into()), "x".into());
    assert_eq!(find_cycle(&edges), None);
    edges.insert(("c".into(), "a".into()), "x".into());
    let cycle = find_cycle(&edges).expect("a -> b -> c -> a");
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4);

    let code = strip(
        "use crate::{config::{Settings, Window}, rules::alert as a};\n// crate::x::y\nlet s = \"crate::z\"; super::geometry::Point::new(); use self::inner::Thing;",
    );
    let found: Vec<Vec<String>> = uses(&code, &["rules".into(), "line".into()])
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let want: Vec<Vec<String>> = vec![
        vec!["config", "Settings"],
        vec!["config", "Window"],
        vec!["rules", "alert"],
        vec!["rules", "geometry", "Point", "new"],
        vec!["rules", "line", "inner", "Thing"],
    ]
    .into_iter()
    .map(|v| v.into_iter().map(String::from).collect())
    .collect();
    assert_eq!(found, want);
}

struct Module {
    file: PathBuf,
    /// `["api", "routes", "admin"]`; empty for `lib.rs`.
    path: Vec<String>,
    /// A `mod.rs` or `lib.rs`: the folder's own module.
    is_folder: bool,
    text: String,
    /// The text with comments, strings and the trailing test module left out.
    code: String,
    code_lines: usize,
}

fn modules(src: &Path) -> Vec<Module> {
    let mut files = Vec::new();
    walk(src, &mut files);
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap();
        let mut path: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let last = path.pop().unwrap();
        if last == "main.rs" || last == "tests.rs" || path.iter().any(|p| p == "tests") {
            continue; // the binary's entry point and test-only files
        }
        let is_folder = last == "mod.rs" || (last == "lib.rs" && path.is_empty());
        if !is_folder {
            path.push(last.trim_end_matches(".rs").to_string());
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let body = without_tests(&text);
        out.push(Module {
            code_lines: body.lines().count(),
            code: strip(body),
            file: file
                .strip_prefix(src.parent().unwrap())
                .unwrap()
                .to_path_buf(),
            path,
            is_folder,
            text,
        });
    }
    out
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, files);
        } else if p.extension().is_some_and(|x| x == "rs") {
            files.push(p);
        }
    }
}

/// The text before a trailing `#[cfg(test)] mod tests`, the convention of this codebase.
fn without_tests(text: &str) -> &str {
    let mut at = 0;
    let mut lines = text.split_inclusive('\n').peekable();
    while let Some(l) = lines.next() {
        if l.trim() == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|n| n.trim_start().starts_with("mod tests {"))
        {
            return &text[..at];
        }
        at += l.len();
    }
    text
}

/// Comments and string/char literals replaced by spaces (newlines kept, so lines still count).
fn strip(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |s: &str, out: &mut String| {
        out.extend(s.chars().map(|c| if c == '\n' { '\n' } else { ' ' }));
    };
    while i < b.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            blank(&rest[..end], &mut out);
            i += end;
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(rest.len(), |e| e + 2);
            blank(&rest[..end], &mut out);
            i += end;
        } else if let Some(len) = raw_string(rest) {
            blank(&rest[..len], &mut out);
            i += len;
        } else if rest.starts_with('"') {
            let mut j = 1;
            while j < rest.len() {
                match rest.as_bytes()[j] {
                    b'\\' => j += 2,
                    b'"' => break,
                    _ => j += 1,
                }
            }
            let end = (j + 1).min(rest.len());
            blank(&rest[..end], &mut out);
            i += end;
        } else if rest.starts_with("'") && char_literal(rest).is_some() {
            let len = char_literal(rest).unwrap();
            blank(&rest[..len], &mut out);
            i += len;
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// `r"..."`, `r#"..."#` and `br"..."` at the start of `s`: their length.
fn raw_string(s: &str) -> Option<usize> {
    let s2 = s.strip_prefix('b').unwrap_or(s);
    let lead = s.len() - s2.len();
    let rest = s2.strip_prefix('r')?;
    let hashes = rest.len() - rest.trim_start_matches('#').len();
    let body = rest[hashes..].strip_prefix('"')?;
    let close = format!("\"{}", "#".repeat(hashes));
    let end = body.find(&close)?;
    Some(lead + 1 + hashes + 1 + end + close.len())
}

/// `'x'`, `'\n'`, `'\u{1F600}'` at the start of `s` (not a lifetime): its length.
fn char_literal(s: &str) -> Option<usize> {
    let rest = &s[1..];
    if let Some(esc) = rest.strip_prefix('\\') {
        let end = esc.find('\'')?;
        return (end <= 10).then_some(1 + 1 + end + 1);
    }
    let c = rest.chars().next()?;
    rest[c.len_utf8()..]
        .starts_with('\'')
        .then_some(1 + c.len_utf8() + 1)
}

/// Every module path the code names, made absolute (from the crate root), with its line.
fn uses(code: &str, module: &[String]) -> Vec<(usize, Vec<String>)> {
    let tokens = tokens(code);
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let (line, t) = &tokens[i];
        let after_colons = i > 0 && tokens[i - 1].1 == "::";
        if t == "use" {
            let mut j = i + 1;
            let mut paths = Vec::new();
            use_tree(&tokens, &mut j, Vec::new(), &mut paths);
            for p in paths {
                if let Some(abs) = absolute(&p, module) {
                    out.push((*line, abs));
                }
            }
            i = j;
        } else if !after_colons && matches!(t.as_str(), "crate" | "super" | "self") {
            let mut p = vec![t.clone()];
            let mut j = i + 1;
            while j + 1 < tokens.len() && tokens[j].1 == "::" && is_ident(&tokens[j + 1].1) {
                p.push(tokens[j + 1].1.clone());
                j += 2;
            }
            if p.len() > 1
                && let Some(abs) = absolute(&p, module)
            {
                out.push((*line, abs));
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// One `use` tree from `tokens[*j]`, up to its `;` (or the `,` / `}` that ends a branch).
fn use_tree(
    tokens: &[(usize, String)],
    j: &mut usize,
    prefix: Vec<String>,
    out: &mut Vec<Vec<String>>,
) {
    let mut p = prefix;
    while *j < tokens.len() {
        let t = tokens[*j].1.as_str();
        match t {
            "{" => {
                *j += 1;
                loop {
                    use_tree(tokens, j, p.clone(), out);
                    if *j >= tokens.len() {
                        return;
                    }
                    let t = tokens[*j].1.as_str();
                    *j += 1;
                    if t == "}" {
                        break;
                    }
                }
                return;
            }
            ";" | "," | "}" => {
                if !p.is_empty() {
                    out.push(p);
                }
                if t == ";" {
                    *j += 1;
                }
                return;
            }
            "::" => *j += 1,
            "as" => {
                *j += 2; // the alias
            }
            "*" => *j += 1,
            _ => {
                if is_ident(t) {
                    p.push(t.to_string());
                }
                *j += 1;
            }
        }
    }
}

fn absolute(p: &[String], module: &[String]) -> Option<Vec<String>> {
    // A file `a/b.rs` is module `a::b` and `a/mod.rs` is `a`: `self` is the module, `super` its parent.
    let mut base: Vec<String> = module.to_vec();
    let mut rest = p;
    match p.first()?.as_str() {
        "crate" => {
            base.clear();
            rest = &p[1..];
        }
        "self" => rest = &p[1..],
        "super" => {
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        _ => return None, // an external crate or a name in scope
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

fn longest_module(names: &BTreeSet<Vec<String>>, path: &[String]) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| names.contains(p))
}

fn is_ident(t: &str) -> bool {
    t.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// Identifiers, `::`, and single punctuation, each with its line number.
fn tokens(code: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut line = 1;
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((line, chars[start..i].iter().collect()));
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push((line, "::".into()));
            i += 2;
        } else {
            out.push((line, c.to_string()));
            i += 1;
        }
    }
    out
}

/// A cycle in the graph, as `[a, b, ..., a]`, or `None`.
fn find_cycle(edges: &BTreeMap<(String, String), String>) -> Option<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges.keys() {
        next.entry(a).or_default().push(b);
    }
    // 0 unseen, 1 on the path, 2 done
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    fn visit<'a>(
        n: &'a str,
        next: &BTreeMap<&'a str, Vec<&'a str>>,
        state: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        state.insert(n, 1);
        path.push(n);
        for &m in next.get(n).into_iter().flatten() {
            match state.get(m).copied().unwrap_or(0) {
                1 => {
                    let from = path.iter().position(|x| *x == m).unwrap();
                    let mut c: Vec<String> = path[from..].iter().map(|s| s.to_string()).collect();
                    c.push(m.to_string());
                    return Some(c);
                }
                0 => {
                    if let Some(c) = visit(m, next, state, path) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(n, 2);
        None
    }
    let nodes: Vec<&str> = next.keys().copied().collect();
    for n in nodes {
        if state.get(n).copied().unwrap_or(0) == 0 {
            let mut path = Vec::new();
            if let Some(c) = visit(n, &next, &mut state, &mut path) {
                return Some(c);
            }
        }
    }
    None
}
