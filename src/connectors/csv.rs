//! A strict RFC 4180 CSV reader for imports: quoted fields (with `""`
//! escapes and line breaks), CRLF or LF line ends, and errors that name
//! the line. Bounded: the caller limits the input size and row count.

use crate::error::FieldError;

/// One row: the line it starts on (1-based) and its fields.
pub(crate) type Row = (usize, Vec<String>);

/// Parses `text` into rows. Stops at the first structural error (a quote
/// inside an unquoted field, text after a closing quote, an unterminated
/// quote) or when `max_rows` is exceeded.
pub(crate) fn parse(text: &str, max_rows: usize) -> Result<Vec<Row>, FieldError> {
    let mut rows = Vec::new();
    let mut chars = text.char_indices().peekable();
    let mut line = 1usize;
    let bytes = text.as_bytes();
    while chars.peek().is_some() {
        if rows.len() >= max_rows {
            return Err(FieldError::new(
                format!("line {line}"),
                format!("more than {max_rows} rows"),
            ));
        }
        let start_line = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted_field = false;
        loop {
            let Some((i, c)) = chars.next() else {
                fields.push(std::mem::take(&mut field));
                break;
            };
            match c {
                '"' if field.is_empty() && !quoted_field => {
                    quoted_field = true;
                    let quote_line = line;
                    // Inside quotes until an unpaired quote.
                    loop {
                        match chars.next() {
                            None => {
                                return Err(FieldError::new(
                                    format!("line {quote_line}"),
                                    "a quoted field is never closed",
                                ));
                            }
                            Some((_, '"')) => {
                                if matches!(chars.peek(), Some((_, '"'))) {
                                    chars.next();
                                    field.push('"');
                                } else {
                                    break;
                                }
                            }
                            Some((_, '\n')) => {
                                line += 1;
                                field.push('\n');
                            }
                            Some((_, ch)) => field.push(ch),
                        }
                    }
                    match chars.peek() {
                        None | Some((_, ',' | '\n' | '\r')) => {}
                        Some(_) => {
                            return Err(FieldError::new(
                                format!("line {line}"),
                                "text after a closing quote (quotes inside a field must be doubled)",
                            ));
                        }
                    }
                }
                '"' => {
                    return Err(FieldError::new(
                        format!("line {line}"),
                        "a quote inside an unquoted field (quote the field and double the quote)",
                    ));
                }
                ',' => {
                    fields.push(std::mem::take(&mut field));
                    quoted_field = false;
                }
                '\r' if bytes.get(i + 1) == Some(&b'\n') => {}
                '\r' => {
                    return Err(FieldError::new(
                        format!("line {line}"),
                        "a bare carriage return",
                    ));
                }
                '\n' => {
                    fields.push(std::mem::take(&mut field));
                    line += 1;
                    break;
                }
                c => field.push(c),
            }
        }
        rows.push((start_line, fields));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quoted_fields_escapes_and_line_numbers() {
        let rows = parse("a,b\r\n\"x, \"\"y\"\"\",\"multi\nline\"\n1,2", 10).unwrap();
        assert_eq!(rows[0], (1, vec!["a".into(), "b".into()]));
        assert_eq!(rows[1], (2, vec!["x, \"y\"".into(), "multi\nline".into()]));
        assert_eq!(rows[2], (4, vec!["1".into(), "2".into()]));
    }

    #[test]
    fn malformed_quoting_names_the_line() {
        assert_eq!(parse("a\nb\"c\n", 10).unwrap_err().field, "line 2");
        assert_eq!(parse("a\n\"b\"c\n", 10).unwrap_err().field, "line 2");
        assert_eq!(
            parse("a\n\"never closed\nx\n", 10).unwrap_err().field,
            "line 2"
        );
        assert!(parse("a\nb\nc\n", 2).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(s in any::<String>()) {
            let _ = parse(&s, 1000);
        }
    }
}
