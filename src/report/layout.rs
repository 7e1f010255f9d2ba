//! Laying the text report out within [`TEXT_WIDTH`] columns: prose wrapped
//! at spaces under a hanging indent, shell commands broken with a trailing
//! backslash (so a copied command still runs), short fields cut with "…".
//!
//! Columns are counted in chars: the report's only non-ASCII characters
//! (→, —, ×, …) take one column each.

use std::io::{self, Write};

/// No line of the text report is wider than this.
pub const TEXT_WIDTH: usize = 120;

/// Continuation lines are indented this much more than the line they
/// continue.
const HANG: usize = 4;

/// `s` cut to `width` columns, ending in "…" when it was longer.
pub fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// One line of prose wrapped at spaces within `width`: continuation lines
/// get the line's own indentation plus [`HANG`]. A word longer than a line
/// is cut where the line ends.
pub fn wrap_prose(line: &str, width: usize) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= width {
        return vec![line.to_string()];
    }
    let indent = chars.iter().take_while(|c| **c == ' ').count();
    // Keep at least half the width for text, however deep the indent.
    let cont = (indent + HANG).min(width / 2);
    let mut out = Vec::new();
    let mut start = 0;
    let mut first = true;
    while start < chars.len() {
        let (lead, min) = if first { (0, indent) } else { (cont, 0) };
        let avail = width - lead;
        let rest = &chars[start..];
        let mut piece: String = " ".repeat(lead);
        if rest.len() <= avail {
            piece.extend(rest);
            out.push(piece);
            break;
        }
        let cut = rest[..=avail]
            .iter()
            .rposition(|c| *c == ' ')
            .filter(|&p| p > min)
            .unwrap_or(avail);
        piece.extend(&rest[..cut]);
        out.push(piece.trim_end().to_string());
        start += cut;
        while chars.get(start) == Some(&' ') {
            start += 1;
        }
        first = false;
    }
    out
}

/// Splits a shell command into words at spaces outside double quotes
/// (a quoted comment stays one word).
fn shell_words(cmd: &str) -> Vec<&str> {
    let mut words = Vec::new();
    let mut quoted = false;
    let mut start = None;
    for (i, c) in cmd.char_indices() {
        match c {
            '"' => {
                quoted = !quoted;
                start.get_or_insert(i);
            }
            ' ' if !quoted => {
                if let Some(s) = start.take() {
                    words.push(&cmd[s..i]);
                }
            }
            _ => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(s) = start {
        words.push(&cmd[s..]);
    }
    words
}

/// A shell command after `prefix` (e.g. "    fix: "), broken at word
/// boundaries so that each line, with its trailing " \" continuation, fits
/// `width`; continuation lines are indented by the prefix's width plus
/// [`HANG`]. Pasted into a shell, the lines are the same command.
pub fn shell_lines(prefix: &str, cmd: &str, width: usize) -> Vec<String> {
    let cont = " ".repeat(prefix.chars().count() + HANG);
    let mut out = Vec::new();
    let mut line = prefix.to_string();
    let mut len = line.chars().count();
    let mut empty = true;
    for w in shell_words(cmd) {
        let wl = w.chars().count();
        // Room for " word" and, since more may follow, " \".
        if !empty && len + 1 + wl + 2 > width {
            line.push_str(" \\");
            out.push(std::mem::replace(&mut line, cont.clone()));
            len = cont.len();
            empty = true;
        }
        if !empty {
            line.push(' ');
            len += 1;
        }
        line.push_str(w);
        len += wl;
        empty = false;
    }
    out.push(line);
    out
}

/// What a [`Lines`] writer does to each line it is given.
enum Layout {
    /// Lays it out within this many columns ([`wrap_prose`]): the report's
    /// sections write their lines, and none of them can overflow.
    Wrap(usize),
    /// ANSI colours for a terminal, after the wrapping (so widths are
    /// counted without the escapes): the headline's BLOCKED (red; green
    /// when nothing is), each finding's kind (blocked red, the others
    /// yellow), and each verdict row's verdict (blocked red, working green,
    /// the rest yellow). The text is otherwise unchanged.
    Paint,
}

/// A writer that hands every line to its [`Layout`], then to `out`.
pub struct Lines<'a> {
    out: &'a mut dyn Write,
    line: Vec<u8>,
    layout: Layout,
}

const RED: &str = "\x1b[1;31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[1;33m";
const RESET: &str = "\x1b[0m";

impl<'a> Lines<'a> {
    /// Lines laid out within `width` columns.
    pub fn wrap(out: &'a mut dyn Write, width: usize) -> Lines<'a> {
        Lines {
            out,
            line: Vec::new(),
            layout: Layout::Wrap(width),
        }
    }

    /// Lines in colour.
    pub fn paint(out: &'a mut dyn Write) -> Lines<'a> {
        Lines {
            out,
            line: Vec::new(),
            layout: Layout::Paint,
        }
    }

    fn emit(&mut self, newline: bool) -> io::Result<()> {
        match self.layout {
            // Lines within the width in bytes are within it in chars.
            Layout::Wrap(width) if self.line.len() > width => {
                let text = String::from_utf8_lossy(&self.line);
                let lines = wrap_prose(&text, width);
                self.out.write_all(lines.join("\n").as_bytes())?;
            }
            Layout::Wrap(_) => self.out.write_all(&self.line)?,
            Layout::Paint => {
                let text = String::from_utf8_lossy(&self.line);
                match colour_of(&text) {
                    Some((colour, at, len)) => {
                        let (head, rest) = text.split_at(at);
                        let (word, tail) = rest.split_at(len);
                        write!(self.out, "{head}{colour}{word}{RESET}{tail}")?;
                    }
                    None => self.out.write_all(&self.line)?,
                }
            }
        }
        if newline {
            self.out.write_all(b"\n")?;
        }
        self.line.clear();
        Ok(())
    }

    /// Writes a last line that had no newline.
    pub fn finish(mut self) -> io::Result<()> {
        if !self.line.is_empty() {
            self.emit(false)?;
        }
        self.out.flush()
    }
}

/// The colour, start and length of what starts `line` and deserves one.
fn colour_of(line: &str) -> Option<(&'static str, usize, usize)> {
    if let Some(rest) = line.strip_prefix("BLOCKED: ") {
        let colour = if rest.starts_with("nothing") {
            GREEN
        } else {
            RED
        };
        return Some((colour, 0, "BLOCKED".len()));
    }
    let body = line.strip_prefix("  ")?;
    let word = body.split(' ').next().unwrap_or("");
    if body.starts_with(' ') || word.is_empty() {
        return None;
    }
    // A finding's header: its kind, upper case.
    if let Some(k) = crate::finding::FindingKind::ALL
        .iter()
        .find(|k| k.as_str().to_uppercase() == word)
    {
        let colour = match k {
            crate::finding::FindingKind::Blocked => RED,
            _ => YELLOW,
        };
        return Some((colour, 2, word.len()));
    }
    // A verdict row: its verdict, lower case.
    let verdict = crate::verdict::VerdictLabel::ALL
        .iter()
        .find(|v| v.as_str() == word)?;
    let colour = match verdict.as_str() {
        v if v.starts_with("blocked") => RED,
        "working" => GREEN,
        _ => YELLOW,
    };
    Some((colour, 2, word.len()))
}

impl Write for Lines<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(i) = memchr::memchr(b'\n', rest) {
            self.line.extend_from_slice(&rest[..i]);
            self.emit(true)?;
            rest = &rest[i + 1..];
        }
        self.line.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paint_colours_the_headline_finding_kinds_and_verdicts_only() {
        let text = "exflow report: 1 input\n\
                    BLOCKED: 2 ports the network stops\n\
                    \x20 tcp/55001 ad-replication: 1 server\n\
                    \x20 BLOCKED tcp/55000 netlogon on 198.51.100.10\n\
                    \x20 REFUSED-BY-HOST tcp/25 smtp\n\
                    \x20 blocked                192.0.2.0/24  netlogon\n\
                    \x20 working                192.0.2.0/24  epm\n\
                    \x20   working is a word here\n\
                    BLOCKED: nothing";
        let mut out = Vec::new();
        let mut p = Lines::paint(&mut out);
        p.write_all(text.as_bytes()).unwrap();
        p.finish().unwrap();
        let got = String::from_utf8(out).unwrap();
        let want = format!(
            "exflow report: 1 input\n\
             {RED}BLOCKED{RESET}: 2 ports the network stops\n\
             \x20 tcp/55001 ad-replication: 1 server\n\
             \x20 {RED}BLOCKED{RESET} tcp/55000 netlogon on 198.51.100.10\n\
             \x20 {YELLOW}REFUSED-BY-HOST{RESET} tcp/25 smtp\n\
             \x20 {RED}blocked{RESET}                192.0.2.0/24  netlogon\n\
             \x20 {GREEN}working{RESET}                192.0.2.0/24  epm\n\
             \x20   working is a word here\n\
             {GREEN}BLOCKED{RESET}: nothing"
        );
        assert_eq!(got, want);
    }

    fn cols(s: &str) -> usize {
        s.chars().count()
    }

    #[test]
    fn prose_wraps_at_spaces_under_a_hanging_indent() {
        let line = format!("    verdict: {}", "word ".repeat(60).trim_end());
        let lines = wrap_prose(&line, 40);
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| cols(l) <= 40), "{lines:#?}");
        assert!(
            lines[1..].iter().all(|l| l.starts_with("        word")),
            "{lines:#?}"
        );
        // Nothing lost, nothing added but the breaks.
        let joined: Vec<&str> = lines.iter().flat_map(|l| l.split_whitespace()).collect();
        let orig: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(joined, orig);
        // Short lines pass untouched, trailing spaces and all.
        assert_eq!(wrap_prose("  a  ", 40), ["  a  "]);
    }

    #[test]
    fn a_word_longer_than_the_line_is_cut() {
        let long = "x".repeat(100);
        let lines = wrap_prose(&format!("  {long}"), 40);
        assert!(lines.iter().all(|l| cols(l) <= 40), "{lines:#?}");
        assert_eq!(lines.concat().replace(' ', ""), long);
    }

    #[test]
    fn commands_break_outside_quotes_with_a_continuation() {
        let cmd = "nft insert rule inet filter forward ip saddr 192.0.2.10 ip daddr 198.51.100.10 tcp dport 55001 ct state new accept comment \"exflow: ad-replication (DRSUAPI)\"";
        let lines = shell_lines("    fix: ", cmd, 80);
        assert!(lines.len() >= 2, "{lines:#?}");
        assert!(lines.iter().all(|l| cols(l) <= 80), "{lines:#?}");
        let (last, rest) = lines.split_last().unwrap();
        assert!(rest.iter().all(|l| l.ends_with(" \\")), "{lines:#?}");
        assert!(!last.ends_with('\\'));
        assert!(
            last.contains("\"exflow: ad-replication (DRSUAPI)\""),
            "the quoted comment stays whole: {lines:#?}"
        );
        // Undoing the breaks as a shell does gives the command back.
        let mut joined = lines.join("\n").replace(" \\\n", " ");
        joined = joined.strip_prefix("    fix: ").unwrap().to_string();
        assert_eq!(
            joined.split_whitespace().collect::<Vec<_>>(),
            cmd.split(' ').collect::<Vec<_>>()
        );
        // A short one stays one line.
        assert_eq!(
            shell_lines("  ", "nft list ruleset", 80),
            ["  nft list ruleset"]
        );
    }

    #[test]
    fn the_writer_wraps_each_line_it_is_given() {
        let mut buf = Vec::new();
        let mut w = Lines::wrap(&mut buf, 30);
        write!(w, "short\n{}\nlast", "long ".repeat(20)).unwrap();
        w.finish().unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.lines().all(|l| cols(l) <= 30), "{text}");
        assert!(text.starts_with("short\nlong long"));
        assert!(text.ends_with("\nlast"));
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
    }
}
