//! `--chmod` values: an absolute octal mode, or (Dockerfile 1.14 and later)
//! a symbolic one such as `u+x,g-w` that is applied to each copied file's
//! own mode, as chmod(1) applies it.
//!
//! The symbolic grammar and its meaning are BSD `setmode(3)`'s, which
//! BuildKit uses (through a Go port of it): comma-separated clauses of
//! `[ugoa]*` followed by one or more actions `[+-=][rwxXst]*` or
//! `[+-=][ugo]` (copying another class's bits). A clause without `ugoa`
//! acts on every class except for bits the umask hides; kiln applies the
//! usual umask 022 there (BuildKit's daemon process's umask), so `+x` is
//! `a+x` and `+w` is `u+w`. `X` adds execute bits only to directories and
//! to files that had an execute bit before the change (only with `+`, as
//! in BSD). `s` (set-id) and `t` (sticky) are ignored for `o` alone.

use super::FileOpError;

/// A parsed `--chmod`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    /// The permission bits every copied file gets (at most `0o7777`).
    Octal(u32),
    /// Changes applied to each copied file's own mode.
    Symbolic(SymbolicMode),
}

impl Chmod {
    /// Parses an octal mode (digits only, at most `07777`) or a symbolic
    /// mode.
    ///
    /// # Examples
    ///
    /// ```
    /// use kiln_executor::Chmod;
    ///
    /// assert_eq!(Chmod::parse("0755").unwrap(), Chmod::Octal(0o755));
    /// let m = Chmod::parse("u+x,g-w").unwrap();
    /// assert_eq!(m.apply(0o664, false), 0o744);
    /// assert!(Chmod::parse("u+q").is_err());
    /// ```
    pub fn parse(value: &str) -> Result<Chmod, FileOpError> {
        let invalid = || FileOpError::InvalidChmod {
            value: value.to_owned(),
        };
        if value.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
            if !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            return match u32::from_str_radix(value, 8) {
                Ok(m) if m <= 0o7777 => Ok(Chmod::Octal(m)),
                _ => Err(invalid()),
            };
        }
        SymbolicMode::parse(value, DEFAULT_UMASK)
            .map(Chmod::Symbolic)
            .ok_or_else(invalid)
    }

    /// The permission bits (with set-id and sticky bits) a file whose mode
    /// is `mode` gets; `is_dir` matters to `X`.
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        match self {
            Chmod::Octal(m) => *m,
            Chmod::Symbolic(s) => s.apply(mode, is_dir),
        }
    }
}

/// The umask a clause without `ugoa` is filtered through.
const DEFAULT_UMASK: u32 = 0o022;

const SETUID: u32 = 0o4000;
const SETGID: u32 = 0o2000;
const STICKY: u32 = 0o1000;
const RWXU: u32 = 0o700;
const RWXG: u32 = 0o070;
const RWXO: u32 = 0o007;
/// What `a` (and `=` without `ugoa`) covers: everything but the sticky bit.
const STANDARD: u32 = SETUID | SETGID | RWXU | RWXG | RWXO;

/// Which classes a copy (`g=u`) writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Classes {
    u: bool,
    g: bool,
    o: bool,
}

/// One primitive change, in the order `setmode(3)` compiles them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Set(u32),
    Clear(u32),
    /// Set these bits if the original mode had an execute bit or the file
    /// is a directory.
    SetIfExec(u32),
    /// Copy the 3 permission bits of class `from` (shift 6, 3 or 0) into
    /// `to`, limited to `mask`: `op` is `+` (or), `-` (clear those bits)
    /// or `=` (replace).
    Copy {
        from: u32,
        op: u8,
        to: Classes,
        mask: u32,
    },
}

/// A compiled symbolic mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolicMode {
    steps: Vec<Step>,
}

impl SymbolicMode {
    /// Compiles `s` (no octal form); `None` when it is not a valid mode.
    fn parse(s: &str, umask: u32) -> Option<SymbolicMode> {
        let mask = !umask & 0o7777;
        let b = s.as_bytes();
        let mut i = 0;
        let mut steps = Vec::new();
        if b.is_empty() {
            return None;
        }
        loop {
            // Who.
            let mut who = 0u32;
            while let Some(&c) = b.get(i) {
                who |= match c {
                    b'a' => STANDARD,
                    b'u' => SETUID | RWXU,
                    b'g' => SETGID | RWXG,
                    b'o' => RWXO,
                    _ => break,
                };
                i += 1;
            }
            // One or more actions.
            loop {
                let op = *b.get(i)?;
                if !matches!(op, b'+' | b'-' | b'=') {
                    return None;
                }
                i += 1;
                who &= !STICKY;
                let mut equal_done = false;
                let mut perm = 0u32;
                let mut perm_x = 0u32;
                loop {
                    let c = b.get(i).copied();
                    match c {
                        Some(b'r') => perm |= 0o444,
                        Some(b'w') => perm |= 0o222,
                        Some(b'x') => perm |= 0o111,
                        Some(b'X') => {
                            if op == b'+' {
                                perm_x = 0o111;
                            }
                        }
                        Some(b's') => {
                            if who == 0 || who & !RWXO != 0 {
                                perm |= SETUID | SETGID;
                            }
                        }
                        Some(b't') => {
                            if who == 0 || who & !RWXO != 0 {
                                who |= STICKY;
                                perm |= STICKY;
                            }
                        }
                        Some(from @ (b'u' | b'g' | b'o')) => {
                            if perm != 0 {
                                push(&mut steps, op, who, perm, mask);
                                perm = 0;
                            }
                            if op == b'=' {
                                equal_done = true;
                            }
                            if perm_x != 0 {
                                push(&mut steps, b'X', who, perm_x, mask);
                                perm_x = 0;
                            }
                            let from = match from {
                                b'u' => 6,
                                b'g' => 3,
                                _ => 0,
                            };
                            let (to, copy_mask) = if who != 0 {
                                (
                                    Classes {
                                        u: who & 0o400 != 0,
                                        g: who & 0o040 != 0,
                                        o: who & 0o004 != 0,
                                    },
                                    u32::MAX,
                                )
                            } else {
                                (
                                    Classes {
                                        u: true,
                                        g: true,
                                        o: true,
                                    },
                                    mask,
                                )
                            };
                            steps.push(Step::Copy {
                                from,
                                op,
                                to,
                                mask: copy_mask,
                            });
                        }
                        _ => {
                            if perm != 0 || (op == b'=' && !equal_done) {
                                push(&mut steps, op, who, perm, mask);
                            }
                            if perm_x != 0 {
                                push(&mut steps, b'X', who, perm_x, mask);
                            }
                            break;
                        }
                    }
                    i += 1;
                }
                match b.get(i) {
                    None => return Some(SymbolicMode { steps }),
                    Some(b',') => {
                        i += 1;
                        // A clause must follow a comma.
                        b.get(i)?;
                        break;
                    }
                    // Another action of the same clause.
                    Some(_) => continue,
                }
            }
        }
    }

    fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        let orig = mode & 0o7777;
        let mut m = orig;
        for step in &self.steps {
            match *step {
                Step::Set(bits) => m |= bits,
                Step::Clear(bits) => m &= !bits,
                Step::SetIfExec(bits) => {
                    if orig & 0o111 != 0 || is_dir {
                        m |= bits;
                    }
                }
                Step::Copy { from, op, to, mask } => {
                    let value = (m >> from) & 0o7;
                    let targets = [(to.u, 6), (to.g, 3), (to.o, 0)];
                    if op != b'+' {
                        let clear = if op == b'=' { 0o7 } else { value };
                        for (on, shift) in targets {
                            if on {
                                m &= !((clear << shift) & mask);
                            }
                        }
                    }
                    if op != b'-' {
                        for (on, shift) in targets {
                            if on {
                                m |= (value << shift) & mask;
                            }
                        }
                    }
                }
            }
        }
        m & 0o7777
    }
}

/// Adds the steps of `op` (`+`, `-`, `=` or `X`) with `perm` for `who`
/// (`0`: every class, filtered by `mask`).
fn push(steps: &mut Vec<Step>, op: u8, who: u32, perm: u32, mask: u32) {
    let bits = if who != 0 { who & perm } else { mask & perm };
    match op {
        b'=' => {
            steps.push(Step::Clear(if who != 0 { who } else { STANDARD }));
            steps.push(Step::Set(bits));
        }
        b'+' => steps.push(Step::Set(bits)),
        b'-' => steps.push(Step::Clear(bits)),
        _ => steps.push(Step::SetIfExec(bits)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str, mode: u32) -> u32 {
        Chmod::parse(s).unwrap().apply(mode, false)
    }

    fn sym_dir(s: &str, mode: u32) -> u32 {
        Chmod::parse(s).unwrap().apply(mode, true)
    }

    #[test]
    fn octal_values() {
        assert_eq!(Chmod::parse("755").unwrap(), Chmod::Octal(0o755));
        assert_eq!(Chmod::parse("04755").unwrap(), Chmod::Octal(0o4755));
        assert_eq!(Chmod::parse("7777").unwrap(), Chmod::Octal(0o7777));
        // The octal form ignores the source's mode.
        assert_eq!(Chmod::parse("640").unwrap().apply(0o777, true), 0o640);
        for bad in ["", "17777", "8", "0x1ff", "75a", "-1"] {
            assert!(Chmod::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn add_remove_and_set_per_class() {
        assert_eq!(sym("u+x,g-w", 0o664), 0o744);
        assert_eq!(sym("go-w", 0o666), 0o644);
        assert_eq!(sym("u=rw,g=r,o=r", 0o777), 0o644);
        assert_eq!(sym("a=", 0o777), 0);
        assert_eq!(sym("u=rwx,go=rx", 0), 0o755);
        assert_eq!(sym("o+w", 0o600), 0o602);
        assert_eq!(sym_dir("u+rw,g+r,o-x,o+w", 0o124), 0o766);
        // Several actions in one clause.
        assert_eq!(sym("u+x-w", 0o644), 0o544);
        assert_eq!(sym("g=rw-w+x", 0), 0o050);
    }

    #[test]
    fn clauses_without_who_follow_the_umask() {
        // umask 022: write only for the owner.
        assert_eq!(sym("+x", 0o644), 0o755);
        assert_eq!(sym("+w", 0o444), 0o644);
        assert_eq!(sym("-w", 0o666), 0o444 | 0o022);
        assert_eq!(sym("=r", 0o777), 0o444);
    }

    #[test]
    fn capital_x_needs_a_directory_or_an_execute_bit() {
        assert_eq!(sym("a+X", 0o666), 0o666);
        assert_eq!(sym("a+X", 0o751), 0o751 | 0o111);
        assert_eq!(sym("a+X", 0o644 | 0o010), 0o755);
        assert_eq!(sym_dir("a+X", 0o124), 0o135);
        // Only with +, as in BSD.
        assert_eq!(sym("a-X", 0o755), 0o755);
        // Decided on the original mode, not one changed earlier.
        assert_eq!(sym("u+x,o+X", 0o644), 0o744);
    }

    #[test]
    fn copies_between_classes() {
        assert_eq!(sym("g=u", 0o640), 0o660);
        assert_eq!(sym("o=u,g=u-w", 0o751), 0o757);
        assert_eq!(sym("go=u-w", 0o751), 0o755);
        assert_eq!(sym("o+g", 0o650), 0o655);
        assert_eq!(sym("u-o", 0o707), 0o007);
    }

    #[test]
    fn setid_and_sticky() {
        assert_eq!(sym("u+s", 0o755), 0o4755);
        assert_eq!(sym("g+s", 0o755), 0o2755);
        assert_eq!(sym("o+s", 0o755), 0o755);
        assert_eq!(sym("+t", 0o777), 0o1777);
        assert_eq!(sym("o+t", 0o777), 0o777);
        assert_eq!(sym("u-s", 0o4755), 0o755);
        // `u=` clears set-uid; a copy (`u=g`) keeps it.
        assert_eq!(sym("u=", 0o4755), 0o055);
        assert_eq!(sym("u=g", 0o4755), 0o4555);
    }

    #[test]
    fn nonsense_is_rejected() {
        for bad in [
            "u", "u+q", "x+", "u+x,", ",u+x", "u+x,,g+w", "ug", "+x y", "rwx",
        ] {
            assert!(Chmod::parse(bad).is_err(), "{bad}");
        }
        assert!(Chmod::parse("u+").is_ok());
        assert!(Chmod::parse("=").is_ok());
    }
}
