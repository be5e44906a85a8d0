//! A tiny C expression tree and its printer.
//!
//! The printer adds parentheses exactly where C's precedence needs them,
//! plus the ones kernel style and `-Wparentheses` expect around a bit
//! operation inside a comparison (`(a & m) != 0`: in C `==` binds tighter
//! than `&`, the trap that makes hand translation of `a & m != 0` wrong).

/// A C expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CExpr {
    /// An identifier, member access or any already-C text that binds tightest
    /// (`slot->base_gfn`, `PAGE_SIZE`, `42`).
    Atom(String),
    /// `f(a, b)`.
    Call(String, Vec<CExpr>),
    /// `!e`.
    Not(Box<CExpr>),
    /// `~e`.
    BitNot(Box<CExpr>),
    /// `(type)e`.
    Cast(String, Box<CExpr>),
    /// A binary operation.
    Bin(BinOp, Box<CExpr>, Box<CExpr>),
    /// `c ? a : b`.
    Cond(Box<CExpr>, Box<CExpr>, Box<CExpr>),
}

/// Binary operators, with C's precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `*`
    Mul,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `<<`
    Shl,
    /// `>>`
    Shr,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `&`
    BitAnd,
    /// `^`
    BitXor,
    /// `|`
    BitOr,
    /// `&&`
    And,
    /// `||`
    Or,
}

impl BinOp {
    /// C precedence: larger binds tighter.
    fn prec(self) -> u8 {
        match self {
            BinOp::Mul => 13,
            BinOp::Add | BinOp::Sub => 12,
            BinOp::Shl | BinOp::Shr => 11,
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => 10,
            BinOp::Eq | BinOp::Ne => 9,
            BinOp::BitAnd => 8,
            BinOp::BitXor => 7,
            BinOp::BitOr => 6,
            BinOp::And => 5,
            BinOp::Or => 4,
        }
    }

    fn text(self) -> &'static str {
        match self {
            BinOp::Mul => "*",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Shl => "<<",
            BinOp::Shr => ">>",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::BitAnd => "&",
            BinOp::BitXor => "^",
            BinOp::BitOr => "|",
            BinOp::And => "&&",
            BinOp::Or => "||",
        }
    }

    fn is_bitwise(self) -> bool {
        matches!(
            self,
            BinOp::BitAnd | BinOp::BitXor | BinOp::BitOr | BinOp::Shl | BinOp::Shr
        )
    }

    fn is_arithmetic(self) -> bool {
        matches!(self, BinOp::Add | BinOp::Sub | BinOp::Mul)
    }

    fn is_comparison(self) -> bool {
        self.prec() == 9 || self.prec() == 10
    }
}

/// Parentheses kernel style and gcc's -Wparentheses want even where C's
/// precedence does not: a bit operation inside a comparison, a logical
/// operation or another kind of bit operation; a comparison inside a
/// comparison; arithmetic inside a bit operation; `&&` inside `||`.
fn clarifies(inner: BinOp, outer: BinOp) -> bool {
    (inner.is_bitwise()
        && (outer.is_comparison()
            || matches!(outer, BinOp::And | BinOp::Or)
            || (outer.is_bitwise() && inner != outer)))
        || (inner.is_comparison() && outer.is_comparison())
        || (inner.is_arithmetic() && outer.is_bitwise())
        || (inner == BinOp::And && outer == BinOp::Or)
}

const PREC_COND: u8 = 3;
const PREC_UNARY: u8 = 14;
const PREC_ATOM: u8 = 15;

impl CExpr {
    fn prec(&self) -> u8 {
        match self {
            CExpr::Atom(_) | CExpr::Call(..) => PREC_ATOM,
            CExpr::Not(_) | CExpr::BitNot(_) | CExpr::Cast(..) => PREC_UNARY,
            CExpr::Bin(op, ..) => op.prec(),
            CExpr::Cond(..) => PREC_COND,
        }
    }

    /// The expression as C text.
    pub fn to_c(&self) -> String {
        match self {
            CExpr::Atom(s) => s.clone(),
            CExpr::Call(f, args) => {
                let args: Vec<String> = args.iter().map(CExpr::to_c).collect();
                format!("{f}({})", args.join(", "))
            }
            CExpr::Not(e) => format!("!{}", e.operand(PREC_UNARY)),
            CExpr::BitNot(e) => format!("~{}", e.operand(PREC_UNARY)),
            CExpr::Cast(t, e) => format!("({t}){}", e.operand(PREC_UNARY)),
            CExpr::Bin(op, l, r) => format!(
                "{} {} {}",
                l.operand_of(*op, false),
                op.text(),
                r.operand_of(*op, true)
            ),
            CExpr::Cond(c, a, b) => {
                format!(
                    "{} ? {} : {}",
                    c.operand(PREC_COND + 1),
                    a.operand(PREC_COND + 1),
                    b.operand(PREC_COND)
                )
            }
        }
    }

    /// Text of `self` as the left or right operand of `parent`.
    fn operand_of(&self, parent: BinOp, right: bool) -> String {
        // Left-associative: a right operand at equal precedence needs
        // parentheses (a - (b - c)).
        let min = if right {
            parent.prec() + 1
        } else {
            parent.prec()
        };
        let clarify = matches!(self, CExpr::Bin(inner, ..) if clarifies(*inner, parent));
        if self.prec() < min || clarify {
            format!("({})", self.to_c())
        } else {
            self.to_c()
        }
    }

    fn operand(&self, min_prec: u8) -> String {
        if self.prec() < min_prec {
            format!("({})", self.to_c())
        } else {
            self.to_c()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atom(s: &str) -> Box<CExpr> {
        Box::new(CExpr::Atom(s.into()))
    }

    #[test]
    fn precedence_traps() {
        // (a & m) != 0 keeps its parentheses: a & m != 0 would be a & (m != 0).
        let e = CExpr::Bin(
            BinOp::Ne,
            Box::new(CExpr::Bin(BinOp::BitAnd, atom("a"), atom("m"))),
            atom("0"),
        );
        assert_eq!(e.to_c(), "(a & m) != 0");
        // a - (b - c) keeps them; (a - b) - c drops them.
        let r = CExpr::Bin(
            BinOp::Sub,
            atom("a"),
            Box::new(CExpr::Bin(BinOp::Sub, atom("b"), atom("c"))),
        );
        assert_eq!(r.to_c(), "a - (b - c)");
        let l = CExpr::Bin(
            BinOp::Sub,
            Box::new(CExpr::Bin(BinOp::Sub, atom("a"), atom("b"))),
            atom("c"),
        );
        assert_eq!(l.to_c(), "a - b - c");
        let n = CExpr::Not(Box::new(CExpr::Bin(BinOp::BitAnd, atom("a"), atom("m"))));
        assert_eq!(n.to_c(), "!(a & m)");
        // a & (b - 1): C does not need the parentheses, gcc and readers do.
        let m = CExpr::Bin(
            BinOp::BitAnd,
            atom("a"),
            Box::new(CExpr::Bin(BinOp::Sub, atom("b"), atom("1"))),
        );
        assert_eq!(m.to_c(), "a & (b - 1)");
    }
}
