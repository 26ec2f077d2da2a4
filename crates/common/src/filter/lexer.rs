//! Splits a SQL92 filter expression into tokens, each with the column it starts at. Keywords are
//! case-insensitive; property names keep their case. Owns no grammar: the parser decides what
//! may follow what.

use super::FilterError;

#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    Ident(String),
    Str(String),
    /// An integer literal as written (sign comes from a separate `-`), without its `L` suffix.
    Long(String),
    Double(String),
    Keyword(Keyword),
    LParen,
    RParen,
    Comma,
    Plus,
    Minus,
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    Not,
    And,
    Or,
    Between,
    In,
    True,
    False,
    Null,
    Is,
    Contains,
    StartsWith,
    EndsWith,
}

impl Keyword {
    fn from_word(word: &str) -> Option<Keyword> {
        const WORDS: [(&str, Keyword); 12] = [
            ("NOT", Keyword::Not),
            ("AND", Keyword::And),
            ("OR", Keyword::Or),
            ("BETWEEN", Keyword::Between),
            ("IN", Keyword::In),
            ("TRUE", Keyword::True),
            ("FALSE", Keyword::False),
            ("NULL", Keyword::Null),
            ("IS", Keyword::Is),
            ("CONTAINS", Keyword::Contains),
            ("STARTSWITH", Keyword::StartsWith),
            ("ENDSWITH", Keyword::EndsWith),
        ];
        WORDS
            .iter()
            .find(|(w, _)| w.eq_ignore_ascii_case(word))
            .map(|&(_, k)| k)
    }

    pub fn name(self) -> &'static str {
        match self {
            Keyword::Not => "NOT",
            Keyword::And => "AND",
            Keyword::Or => "OR",
            Keyword::Between => "BETWEEN",
            Keyword::In => "IN",
            Keyword::True => "TRUE",
            Keyword::False => "FALSE",
            Keyword::Null => "NULL",
            Keyword::Is => "IS",
            Keyword::Contains => "CONTAINS",
            Keyword::StartsWith => "STARTSWITH",
            Keyword::EndsWith => "ENDSWITH",
        }
    }
}

impl Token {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Token::Ident(name) => format!("property `{name}`"),
            Token::Str(s) => format!("string '{s}'"),
            Token::Long(n) | Token::Double(n) => format!("number {n}"),
            Token::Keyword(k) => k.name().to_owned(),
            Token::LParen => "`(`".to_owned(),
            Token::RParen => "`)`".to_owned(),
            Token::Comma => "`,`".to_owned(),
            Token::Plus => "`+`".to_owned(),
            Token::Minus => "`-`".to_owned(),
            Token::Eq => "`=`".to_owned(),
            Token::Ne => "`<>`".to_owned(),
            Token::Gt => "`>`".to_owned(),
            Token::Ge => "`>=`".to_owned(),
            Token::Lt => "`<`".to_owned(),
            Token::Le => "`<=`".to_owned(),
            Token::End => "end of expression".to_owned(),
        }
    }
}

/// A token and the 1-based character column where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned {
    pub token: Token,
    pub column: usize,
}

/// Tokenizes the whole expression; the last token is always `End`.
pub fn tokenize(text: &str) -> Result<Vec<Spanned>, FilterError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        let at = |token| Spanned { token, column };
        match c {
            c if c.is_whitespace() => i += 1,
            '-' if chars.get(i + 1) == Some(&'-') => {
                while i < chars.len() && chars[i] != '\n' && chars[i] != '\r' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                let close = (i + 2..chars.len().saturating_sub(1))
                    .find(|&j| chars[j] == '*' && chars[j + 1] == '/')
                    .ok_or_else(|| {
                        FilterError::syntax(column, "`*/` closing the comment", "end of expression")
                    })?;
                i = close + 2;
            }
            '(' | ')' | ',' | '+' | '-' | '=' => {
                out.push(at(match c {
                    '(' => Token::LParen,
                    ')' => Token::RParen,
                    ',' => Token::Comma,
                    '+' => Token::Plus,
                    '-' => Token::Minus,
                    _ => Token::Eq,
                }));
                i += 1;
            }
            '<' | '>' => {
                let next = chars.get(i + 1).copied();
                let (token, len) = match (c, next) {
                    ('<', Some('>')) => (Token::Ne, 2),
                    ('<', Some('=')) => (Token::Le, 2),
                    ('<', _) => (Token::Lt, 1),
                    ('>', Some('=')) => (Token::Ge, 2),
                    _ => (Token::Gt, 1),
                };
                out.push(at(token));
                i += len;
            }
            '\'' => {
                let (value, next) = string_literal(&chars, i)?;
                out.push(at(Token::Str(value)));
                i = next;
            }
            c if c.is_ascii_digit()
                || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let (token, next) = number(&chars, i)?;
                out.push(at(token));
                i = next;
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == '$' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '$')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                out.push(at(match Keyword::from_word(&word) {
                    Some(k) => Token::Keyword(k),
                    None => Token::Ident(word),
                }));
            }
            other => {
                return Err(FilterError::syntax(
                    column,
                    "a property, a literal, an operator or a parenthesis",
                    format!("character `{other}`"),
                ))
            }
        }
    }
    out.push(Spanned {
        token: Token::End,
        column: chars.len() + 1,
    });
    Ok(out)
}

/// `'it''s'` → `it's`; returns the value and the index after the closing quote.
fn string_literal(chars: &[char], open: usize) -> Result<(String, usize), FilterError> {
    let mut value = String::new();
    let mut i = open + 1;
    loop {
        match chars.get(i) {
            None => {
                return Err(FilterError::syntax(
                    open + 1,
                    "a closing `'` for this string",
                    "end of expression",
                ))
            }
            Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                value.push('\'');
                i += 2;
            }
            Some('\'') => return Ok((value, i + 1)),
            Some(&c) => {
                value.push(c);
                i += 1;
            }
        }
    }
}

/// RocketMQ's literals: `0`, `123`, `123L`, `1.5`, `1.`, `.5`, `1e3`, `1.5E-2`.
fn number(chars: &[char], start: usize) -> Result<(Token, usize), FilterError> {
    let digits = |mut i: usize| {
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut i = digits(start);
    let mut is_double = false;
    if chars.get(i) == Some(&'.') {
        is_double = true;
        i = digits(i + 1);
    }
    if matches!(chars.get(i), Some('e' | 'E')) {
        let mut j = i + 1;
        if matches!(chars.get(j), Some('+' | '-')) {
            j += 1;
        }
        if chars.get(j).is_some_and(char::is_ascii_digit) {
            is_double = true;
            i = digits(j);
        }
    }
    let text: String = chars[start..i].iter().collect();
    if is_double {
        return Ok((Token::Double(text), i));
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(FilterError::syntax(
            start + 1,
            "a decimal number without leading zeros",
            format!("number {text}"),
        ));
    }
    if matches!(chars.get(i), Some('l' | 'L')) {
        i += 1;
    }
    Ok((Token::Long(text), i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<Token> {
        tokenize(text)
            .unwrap()
            .into_iter()
            .map(|s| s.token)
            .collect()
    }

    #[test]
    fn splits_operators_literals_and_keywords() {
        assert_eq!(
            tokens("a>=5 and b<>'it''s' OR c <= 1.5e2 -- comment\n /* x */ not d in (10L)"),
            vec![
                Token::Ident("a".into()),
                Token::Ge,
                Token::Long("5".into()),
                Token::Keyword(Keyword::And),
                Token::Ident("b".into()),
                Token::Ne,
                Token::Str("it's".into()),
                Token::Keyword(Keyword::Or),
                Token::Ident("c".into()),
                Token::Le,
                Token::Double("1.5e2".into()),
                Token::Keyword(Keyword::Not),
                Token::Ident("d".into()),
                Token::Keyword(Keyword::In),
                Token::LParen,
                Token::Long("10".into()),
                Token::RParen,
                Token::End,
            ]
        );
    }

    #[test]
    fn columns_count_characters() {
        let t = tokenize("é = 'x'").unwrap_err();
        assert_eq!(t.column(), 1);
        let t = tokenize("'é' = 'x' AND a = 1").unwrap();
        assert_eq!(t[4].column, 15);
    }

    #[test]
    fn unterminated_string_points_at_its_quote() {
        let e = tokenize("a = 'abc").unwrap_err();
        assert_eq!(e.column(), 5);
        assert!(e.to_string().contains("closing `'`"), "{e}");
    }
}
