//! A token-level view of Rust source, enough for the audit: per line, the code with
//! comments removed and string/char literal contents blanked, and the comment text.
//!
//! This is a lexer, not a parser: it knows line and (nested) block comments, string, byte
//! string and raw string literals, and tells char literals from lifetimes. That is all the
//! audit needs to find `unsafe` in code (never in a comment or a string) and the comments
//! above it.

/// One source line, split into code and comment.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Line {
    /// The code on this line; comments removed, literal contents replaced by spaces
    /// (the quotes stay, so `"x"` reads as `" "`).
    pub code: String,
    /// The text of every comment on this line, delimiters included (`// SAFETY: ...`).
    pub comment: String,
}

impl Line {
    /// True when the line holds neither code nor comment.
    pub fn is_blank(&self) -> bool {
        self.code.trim().is_empty() && self.comment.trim().is_empty()
    }

    /// True when the line holds a comment and no code.
    pub fn is_comment_only(&self) -> bool {
        self.code.trim().is_empty() && !self.comment.trim().is_empty()
    }
}

enum State {
    Code,
    LineComment,
    BlockComment(u32),
    Str,
    RawStr(usize),
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Splits `src` into lines of code and comment.
pub fn lines(src: &str) -> Vec<Line> {
    let chars: Vec<char> = src.chars().collect();
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let mut out = Vec::new();
    let mut cur = Line::default();
    let mut state = State::Code;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            out.push(std::mem::take(&mut cur));
            if matches!(state, State::LineComment) {
                state = State::Code;
            }
            i += 1;
            continue;
        }
        match state {
            State::Code => {
                if c == '/' && at(i + 1) == '/' {
                    state = State::LineComment;
                    cur.comment.push_str("//");
                    i += 2;
                    continue;
                }
                if c == '/' && at(i + 1) == '*' {
                    state = State::BlockComment(1);
                    cur.comment.push_str("/*");
                    i += 2;
                    continue;
                }
                if c == '"' {
                    state = State::Str;
                    cur.code.push('"');
                } else if let Some(prefix) = raw_prefix(&chars, i) {
                    // r"…", r#"…"#, br"…": count the hashes; if a quote follows, it is raw.
                    let mut j = i + prefix;
                    while at(j) == '#' {
                        j += 1;
                    }
                    if at(j) == '"' {
                        let hashes = j - i - prefix;
                        cur.code.extend(&chars[i..=j]);
                        state = State::RawStr(hashes);
                        i = j + 1;
                        continue;
                    }
                    cur.code.push(c);
                } else if c == '\'' {
                    // A char literal ('a', '\n', '\u{1F600}') or a lifetime ('a, 'static).
                    if at(i + 1) == '\\' {
                        let mut j = i + 3; // past the quote, the backslash and the escaped char
                        while j < chars.len() && chars[j] != '\'' && chars[j] != '\n' {
                            j += 1;
                        }
                        cur.code.push_str("' '");
                        i = j + 1;
                        continue;
                    } else if at(i + 2) == '\'' && at(i + 1) != '\n' {
                        cur.code.push_str("' '");
                        i += 3;
                        continue;
                    }
                    cur.code.push(c);
                } else {
                    cur.code.push(c);
                }
            }
            State::LineComment => cur.comment.push(c),
            State::BlockComment(depth) => {
                if c == '*' && at(i + 1) == '/' {
                    cur.comment.push_str("*/");
                    state = if depth == 1 { State::Code } else { State::BlockComment(depth - 1) };
                    i += 2;
                    continue;
                }
                if c == '/' && at(i + 1) == '*' {
                    cur.comment.push_str("/*");
                    state = State::BlockComment(depth + 1);
                    i += 2;
                    continue;
                }
                cur.comment.push(c);
            }
            State::Str => {
                if c == '\\' {
                    cur.code.push(' ');
                    if at(i + 1) == '\n' {
                        out.push(std::mem::take(&mut cur));
                    } else {
                        cur.code.push(' ');
                    }
                    i += 2;
                    continue;
                }
                if c == '"' {
                    cur.code.push('"');
                    state = State::Code;
                } else {
                    cur.code.push(' ');
                }
            }
            State::RawStr(hashes) => {
                if c == '"' && (1..=hashes).all(|k| at(i + k) == '#') {
                    cur.code.push('"');
                    cur.code.extend(std::iter::repeat_n('#', hashes));
                    state = State::Code;
                    i += 1 + hashes;
                    continue;
                }
                cur.code.push(' ');
            }
        }
        i += 1;
    }
    if !cur.code.is_empty() || !cur.comment.is_empty() || !src.ends_with('\n') {
        out.push(cur);
    }
    out
}

/// At `r` or `br` not inside an identifier: the prefix length (1 or 2) of a possible raw string.
fn raw_prefix(chars: &[char], i: usize) -> Option<usize> {
    if i > 0 && is_ident(chars[i - 1]) {
        return None;
    }
    match (chars[i], chars.get(i + 1)) {
        ('r', _) => Some(1),
        ('b', Some('r')) => Some(2),
        _ => None,
    }
}

/// Byte offsets of every whole-word occurrence of `word` in `code`.
pub fn find_word(code: &str, word: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(pos) = code[from..].find(word) {
        let start = from + pos;
        let end = start + word.len();
        let before = code[..start].chars().next_back().is_some_and(is_ident);
        let after = code[end..].chars().next().is_some_and(is_ident);
        if !before && !after {
            out.push(start);
        }
        from = end;
    }
    out
}

/// True when `word` occurs as a whole word in `code`.
pub fn has_word(code: &str, word: &str) -> bool {
    !find_word(code, word).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_strings_are_not_code() {
        let src = "let a = \"unsafe { }\"; // unsafe here\n/* unsafe\n still */ let b = 1;\n";
        let l = lines(src);
        assert_eq!(l.len(), 3);
        assert!(!has_word(&l[0].code, "unsafe"));
        assert!(l[0].comment.contains("unsafe here"));
        assert!(l[1].code.trim().is_empty());
        assert!(l[2].code.contains("let b = 1;"));
        assert!(l[2].comment.contains("still"));
    }

    #[test]
    fn nested_block_comments_end_at_the_outer_close() {
        let l = lines("/* a /* b */ unsafe */ unsafe {}\n");
        assert_eq!(find_word(&l[0].code, "unsafe").len(), 1);
    }

    #[test]
    fn raw_strings_and_byte_strings_are_blanked() {
        let l = lines("let s = r#\"unsafe \" { \"#; let t = br\"unsafe\"; let u = b\"unsafe\"; unsafe {}\n");
        assert_eq!(find_word(&l[0].code, "unsafe").len(), 1, "{:?}", l[0].code);
    }

    #[test]
    fn char_literals_and_lifetimes() {
        // The quote char must not open a string; the lifetime must not open a char literal.
        let l = lines("let q = '\"'; fn f<'a>(x: &'a u8) {} let e = '\\''; let b = '\\\\'; unsafe {}\n");
        assert_eq!(find_word(&l[0].code, "unsafe").len(), 1, "{:?}", l[0].code);
        assert!(l[0].code.contains("<'a>"));
        assert!(l[0].code.contains("let e = ' '; let b = ' ';"), "{:?}", l[0].code);
    }

    #[test]
    fn multi_line_strings_keep_line_numbers() {
        let l = lines("let s = \"one\ntwo unsafe\nthree\"; unsafe {}\n");
        assert_eq!(l.len(), 3);
        assert_eq!(find_word(&l[2].code, "unsafe").len(), 1);
        assert!(!has_word(&l[1].code, "unsafe"));
    }

    #[test]
    fn words_respect_identifier_boundaries() {
        assert_eq!(find_word("unsafe_code unsafe xunsafe unsafe", "unsafe"), vec![12, 27]);
        assert!(has_word("RLock::new()", "RLock"));
        assert!(!has_word("RLock::new()", "Lock"));
    }
}
