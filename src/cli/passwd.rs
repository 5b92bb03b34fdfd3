//! `ronda passwd`: print an argon2id hash of a password for `[[http.users]]`.
//!
//! On a terminal it asks twice without echo; otherwise (a script) it reads the first line of
//! stdin. The hash goes to stdout, alone, or as a whole `[[http.users]]` block with `--user`.

use std::io::{BufRead, IsTerminal, Write};

use super::{CliError, CliResult};
use crate::api::auth::{MIN_PASSWORD_CHARS, hash_password};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print a whole `[[http.users]]` block for this user name instead of the hash alone.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// The role in that block: guard, reviewer or admin.
    #[arg(long, default_value = "guard", value_parser = ["guard", "reviewer", "admin"], requires = "user")]
    pub role: String,
}

pub fn run(args: Args) -> CliResult {
    let password = if std::io::stdin().is_terminal() {
        let first = ask("Password: ")?;
        check_length(&first)?;
        let again = ask("Again: ")?;
        if again != first {
            return Err(CliError::Usage(
                "the two passwords differ; nothing printed".into(),
            ));
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::Runtime(format!("cannot read the password from stdin: {e}")))?;
        let pw = line.strip_suffix('\n').unwrap_or(&line);
        let pw = pw.strip_suffix('\r').unwrap_or(pw).to_string();
        check_length(&pw)?;
        pw
    };
    let hash = hash_password(&password).map_err(CliError::Runtime)?;
    let mut out = std::io::stdout().lock();
    let written = match &args.user {
        Some(name) => writeln!(
            out,
            "[[http.users]]\nname = {}\nrole = \"{}\"\npassword_hash = \"{hash}\"",
            toml_string(name),
            args.role
        ),
        None => writeln!(out, "{hash}"),
    };
    written.map_err(|e| CliError::Runtime(format!("cannot write: {e}")))?;
    if std::io::stdout().is_terminal() && args.user.is_none() {
        eprintln!("Paste it into [[http.users]] as password_hash = \"...\" in the config file.");
    }
    Ok(())
}

fn check_length(pw: &str) -> CliResult {
    let n = pw.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(CliError::Usage(format!(
            "the password is too short: {n} characters, at least {MIN_PASSWORD_CHARS} are needed; nothing printed"
        )));
    }
    Ok(())
}

fn toml_string(s: &str) -> String {
    toml_edit::Value::from(s).to_string()
}

/// The terminal settings to restore if the user presses Ctrl-C while echo is off.
static SAVED: std::sync::OnceLock<libc::termios> = std::sync::OnceLock::new();

extern "C" fn restore_and_exit(sig: libc::c_int) {
    // SAFETY: tcsetattr, signal and raise are async-signal-safe; SAVED was set before the
    // handler was installed and is never changed afterwards.
    unsafe {
        if let Some(t) = SAVED.get() {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, t);
        }
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// Prompt on stderr and read a line from the terminal with echo off.
fn ask(prompt: &str) -> Result<String, CliError> {
    let fd = libc::STDIN_FILENO;
    // SAFETY: termios is plain data; tcgetattr fills it for a terminal fd.
    let mut term: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd is stdin, checked to be a terminal by the caller; term is a valid pointer.
    if unsafe { libc::tcgetattr(fd, &mut term) } != 0 {
        return Err(CliError::Runtime(format!(
            "cannot read the terminal settings: {}",
            std::io::Error::last_os_error()
        )));
    }
    let _ = SAVED.set(term);
    let handler = restore_and_exit as extern "C" fn(libc::c_int);
    // SAFETY: installing a handler that only calls async-signal-safe functions.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
    let mut quiet = term;
    quiet.c_lflag &= !libc::ECHO;
    quiet.c_lflag |= libc::ECHONL;
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    // SAFETY: as above, with settings derived from the current ones.
    if unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &quiet) } != 0 {
        return Err(CliError::Runtime(format!(
            "cannot turn the terminal echo off: {}",
            std::io::Error::last_os_error()
        )));
    }
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    // SAFETY: restoring the settings read above.
    unsafe {
        libc::tcsetattr(fd, libc::TCSANOW, &term);
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
    }
    match read {
        Ok(0) => Err(CliError::Usage("no password given; nothing printed".into())),
        Ok(_) => {
            let pw = line.strip_suffix('\n').unwrap_or(&line);
            Ok(pw.strip_suffix('\r').unwrap_or(pw).to_string())
        }
        Err(e) => Err(CliError::Runtime(format!("cannot read the password: {e}"))),
    }
}

/// A new password, e.g. for each demo run: no default password ever works on a running ronda.
pub(crate) fn new_password() -> String {
    // no look-alikes (0/O, 1/l/I): it is read off a screen and typed on a phone
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    (0..12)
        .map(|i| {
            let c = char::from(ALPHABET[rand::random_range(0..ALPHABET.len())]);
            if i > 0 && i % 4 == 0 {
                format!("-{c}")
            } else {
                c.to_string()
            }
        })
        .collect()
}
