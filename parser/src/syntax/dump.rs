//! BuildKit's dump format for syntax trees (what `dockerfile-debug` and the
//! conformance cases print): `(keyword ["--flag" ...] "arg" ...)`, strings
//! quoted like Go's `strconv.Quote`.

use std::fmt::Write;

use super::{Args, Node};

/// Appends `keyword [flags] args` of `node` (without the outer parentheses).
pub(super) fn node(node: &Node, out: &mut String) {
    out.push_str(&node.keyword.as_str().to_ascii_lowercase());
    if !node.flags.is_empty() {
        out.push_str(" [");
        for (i, f) in node.flags.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            quote(&f.text, out);
        }
        out.push(']');
    }
    args(&node.args, out);
}

fn args(args: &Args, out: &mut String) {
    match args {
        Args::Empty => {}
        Args::Words(v) | Args::Json(v) => {
            for w in v {
                out.push(' ');
                quote(w, out);
            }
        }
        Args::Text(t) => {
            out.push(' ');
            quote(t, out);
        }
        Args::Pairs(pairs) => {
            for p in pairs {
                for s in [
                    p.key.as_str(),
                    p.value.as_str(),
                    if p.equals { "=" } else { "" },
                ] {
                    out.push(' ');
                    quote(s, out);
                }
            }
        }
        Args::Trigger(inner) => {
            out.push_str(" (");
            node(inner, out);
            out.push(')');
        }
        Args::Health { kind, command } => {
            out.push(' ');
            quote(kind, out);
            self::args(command, out);
        }
    }
}

/// Whether Go's `unicode.IsPrint` would print `c` as is (approximated for
/// format characters, which Rust's standard library does not classify).
fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c,
        '\u{ad}' | '\u{600}'..='\u{605}' | '\u{61c}' | '\u{6dd}' | '\u{70f}' | '\u{180e}'
        | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}'
        | '\u{e000}'..='\u{f8ff}' | '\u{f0000}'..='\u{10ffff}')
}

/// Appends `s` quoted as Go's `strconv.Quote` does.
pub(crate) fn quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_print(c) => out.push(c),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> String {
        let mut out = String::new();
        quote(s, &mut out);
        out
    }

    #[test]
    fn quotes_like_go() {
        assert_eq!(q("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(q("\u{0}\t\n"), r#""\x00\t\n""#);
        assert_eq!(q("♥☃ 한"), "\"♥☃ 한\"");
        assert_eq!(q("\u{a0}\u{85}\u{7f}"), r#""\u00a0\u0085\x7f""#);
        assert_eq!(q("\u{feff}"), r#""\ufeff""#);
    }
}
