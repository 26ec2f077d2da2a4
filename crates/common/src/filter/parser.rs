//! Recursive-descent parser from tokens to [`Expr`], with SQL's precedence: `OR` binds loosest,
//! then `AND`, then `NOT`, then the predicates (`=`, `BETWEEN`, `IN`, `IS NULL`, …). Also makes
//! RocketMQ's compile-time checks (only numbers are ordered, `BETWEEN` bounds in order, `IN`
//! applies to a property), so a subscription that can never work is refused up front.

use super::eval::{CmpOp, Expr, Literal, Operand, TextOp};
use super::lexer::{tokenize, Keyword, Spanned, Token};
use super::FilterError;

const PREDICATE_TAIL: &str =
    "a comparison (=, <>, >, >=, <, <=), IS [NOT] NULL, [NOT] BETWEEN, [NOT] IN, [NOT] CONTAINS, [NOT] STARTSWITH or [NOT] ENDSWITH";

pub fn parse(text: &str) -> Result<Expr, FilterError> {
    let mut p = Parser {
        tokens: tokenize(text)?,
        pos: 0,
    };
    let expr = p.or_expr()?;
    match p.peek() {
        Token::End => Ok(expr),
        _ => Err(p.unexpected("AND, OR or the end of the expression")),
    }
}

struct Parser {
    tokens: Vec<Spanned>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.pos].token
    }

    fn column(&self) -> usize {
        self.tokens[self.pos].column
    }

    fn next(&mut self) -> Token {
        let t = self.tokens[self.pos].token.clone();
        if t != Token::End {
            self.pos += 1;
        }
        t
    }

    fn eat_keyword(&mut self, k: Keyword) -> bool {
        if *self.peek() == Token::Keyword(k) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn unexpected(&self, expected: &str) -> FilterError {
        FilterError::syntax(self.column(), expected, self.peek().describe())
    }

    fn expect(&mut self, token: Token, expected: &str) -> Result<(), FilterError> {
        if *self.peek() == token {
            self.next();
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    fn or_expr(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.and_expr()?;
        while self.eat_keyword(Keyword::Or) {
            let right = self.and_expr()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.not_expr()?;
        while self.eat_keyword(Keyword::And) {
            let right = self.not_expr()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not_expr(&mut self) -> Result<Expr, FilterError> {
        if self.eat_keyword(Keyword::Not) {
            return Ok(Expr::Not(Box::new(self.not_expr()?)));
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Expr, FilterError> {
        if *self.peek() == Token::LParen {
            self.next();
            let inner = self.or_expr()?;
            self.expect(Token::RParen, "`)`, AND or OR")?;
            return Ok(inner);
        }
        let column = self.column();
        let operand = self.operand()?;
        let op = match self.peek() {
            Token::Eq => Some(CmpOp::Eq),
            Token::Ne => Some(CmpOp::Ne),
            Token::Gt => Some(CmpOp::Gt),
            Token::Ge => Some(CmpOp::Ge),
            Token::Lt => Some(CmpOp::Lt),
            Token::Le => Some(CmpOp::Le),
            _ => None,
        };
        if let Some(op) = op {
            self.next();
            let right_column = self.column();
            let right = self.operand()?;
            if op.is_ordering() {
                orderable(&operand, column, op.symbol())?;
                orderable(&right, right_column, op.symbol())?;
            }
            return Ok(Expr::Compare {
                op,
                left: operand,
                right,
            });
        }
        if self.eat_keyword(Keyword::Is) {
            let negated = self.eat_keyword(Keyword::Not);
            if !self.eat_keyword(Keyword::Null) {
                return Err(self.unexpected(if negated { "NULL" } else { "NULL or NOT NULL" }));
            }
            return Ok(Expr::IsNull { operand, negated });
        }
        let negated = self.eat_keyword(Keyword::Not);
        let keyword =
            match self.peek() {
                Token::Keyword(
                    k @ (Keyword::Between
                    | Keyword::In
                    | Keyword::Contains
                    | Keyword::StartsWith
                    | Keyword::EndsWith),
                ) => *k,
                _ => {
                    return match operand {
                        Operand::Literal(Literal::Bool(b)) if !negated => Ok(Expr::Const(b)),
                        _ if negated => Err(self
                            .unexpected("BETWEEN, IN, CONTAINS, STARTSWITH or ENDSWITH after NOT")),
                        _ => Err(self.unexpected(PREDICATE_TAIL)),
                    }
                }
            };
        self.next();
        let op = match keyword {
            Keyword::Between => return self.between(operand, column, negated),
            Keyword::In => return self.in_list(operand, column, negated),
            Keyword::Contains => TextOp::Contains,
            Keyword::StartsWith => TextOp::StartsWith,
            _ => TextOp::EndsWith,
        };
        let pattern = self.string_literal(keyword.name())?;
        Ok(Expr::Text {
            op,
            operand,
            pattern,
            negated,
        })
    }

    fn between(
        &mut self,
        operand: Operand,
        column: usize,
        negated: bool,
    ) -> Result<Expr, FilterError> {
        let low_column = self.column();
        let low = self.operand()?;
        if !self.eat_keyword(Keyword::And) {
            return Err(self.unexpected("AND between the bounds of BETWEEN"));
        }
        let high_column = self.column();
        let high = self.operand()?;
        orderable(&operand, column, "BETWEEN")?;
        orderable(&low, low_column, "BETWEEN")?;
        orderable(&high, high_column, "BETWEEN")?;
        if let (Some(l), Some(h)) = (number_literal(&low), number_literal(&high)) {
            if l > h {
                return Err(FilterError::invalid(
                    low_column,
                    format!("the low bound of BETWEEN ({l}) is greater than the high bound ({h})"),
                ));
            }
        }
        Ok(Expr::Between {
            operand,
            low,
            high,
            negated,
        })
    }

    fn in_list(
        &mut self,
        operand: Operand,
        column: usize,
        negated: bool,
    ) -> Result<Expr, FilterError> {
        let Operand::Property(property) = operand else {
            return Err(FilterError::invalid(
                column,
                "IN applies to a property, e.g. `color IN ('red', 'blue')`",
            ));
        };
        self.expect(Token::LParen, "`(` opening the IN list")?;
        let mut values = vec![self.string_literal("IN")?];
        while *self.peek() == Token::Comma {
            self.next();
            values.push(self.string_literal("IN")?);
        }
        self.expect(Token::RParen, "`,` or `)` closing the IN list")?;
        Ok(Expr::In {
            property,
            values,
            negated,
        })
    }

    fn string_literal(&mut self, after: &str) -> Result<String, FilterError> {
        match self.peek() {
            Token::Str(_) => match self.next() {
                Token::Str(s) => Ok(s),
                _ => unreachable!("peeked a string"),
            },
            _ => Err(self.unexpected(&format!("a string literal for {after}"))),
        }
    }

    fn operand(&mut self) -> Result<Operand, FilterError> {
        let column = self.column();
        let literal = |l| Ok(Operand::Literal(l));
        let operand = match self.peek().clone() {
            Token::Ident(name) => Ok(Operand::Property(name)),
            Token::Str(s) => literal(Literal::Str(s)),
            Token::Keyword(Keyword::True) => literal(Literal::Bool(true)),
            Token::Keyword(Keyword::False) => literal(Literal::Bool(false)),
            Token::Long(text) => literal(long(&text, column)?),
            Token::Double(text) => literal(double(&text, column)?),
            sign @ (Token::Minus | Token::Plus) => {
                self.next();
                let negative = sign == Token::Minus;
                let number_column = self.column();
                match self.peek().clone() {
                    Token::Long(text) if negative => literal(long(&format!("-{text}"), column)?),
                    Token::Long(text) => literal(long(&text, number_column)?),
                    Token::Double(text) => match double(&text, number_column)? {
                        Literal::Double(d) if negative => literal(Literal::Double(-d)),
                        other => literal(other),
                    },
                    _ => {
                        let sign = if negative { '-' } else { '+' };
                        return Err(self.unexpected(&format!("a number after `{sign}`")));
                    }
                }
            }
            Token::Keyword(Keyword::Null) => Err(FilterError::invalid(
                column,
                "NULL cannot be compared; test it with IS NULL or IS NOT NULL",
            )),
            _ => Err(self.unexpected("a property, a literal, NOT or `(`")),
        }?;
        self.next();
        Ok(operand)
    }
}

fn long(text: &str, column: usize) -> Result<Literal, FilterError> {
    text.parse::<i64>().map(Literal::Long).map_err(|_| {
        FilterError::invalid(column, format!("{text} does not fit in a 64-bit integer"))
    })
}

fn double(text: &str, column: usize) -> Result<Literal, FilterError> {
    match text.parse::<f64>() {
        Ok(d) if d.is_finite() => Ok(Literal::Double(d)),
        _ => Err(FilterError::invalid(
            column,
            format!("{text} is not a finite number"),
        )),
    }
}

fn number_literal(operand: &Operand) -> Option<f64> {
    match operand {
        Operand::Literal(Literal::Long(n)) => Some(*n as f64),
        Operand::Literal(Literal::Double(d)) => Some(*d),
        _ => None,
    }
}

/// RocketMQ orders numbers only: a string or boolean literal next to `<`, `BETWEEN`, … is refused.
fn orderable(operand: &Operand, column: usize, op: &str) -> Result<(), FilterError> {
    match operand {
        Operand::Literal(Literal::Str(s)) => Err(FilterError::invalid(
            column,
            format!("'{s}' cannot be compared with {op}: only numbers are ordered"),
        )),
        Operand::Literal(Literal::Bool(b)) => Err(FilterError::invalid(
            column,
            format!(
                "{} cannot be compared with {op}: only numbers are ordered",
                if *b { "TRUE" } else { "FALSE" }
            ),
        )),
        _ => Ok(()),
    }
}
