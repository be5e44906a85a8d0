//! The model's rules (reference/src/rules.rs) as C expressions.
//!
//! The rules are parsed with syn from the model's own source, embedded at
//! build time, so the C always follows the model the checker runs. Each
//! rule's parameters are bound to C expressions at the use site (a template
//! placeholder), its `let`s are inlined, and its body becomes one C
//! expression: `wrapping_add` → `+`, `if`/`else` → `?:`, `max(a, b)` → the
//! kernel's `max()`. Anything outside that subset is an error naming the
//! rule and the construct, never a silent guess.

use std::collections::HashMap;
use std::fmt;

use syn::{BinOp as RBin, Expr, FnArg, Item, Lit, Pat, Stmt, Type, UnOp};

use crate::cexpr::{BinOp, CExpr};

/// The model's rules source, as compiled into this binary.
pub const RULES_SOURCE: &str = include_str!("../../reference/src/rules.rs");

/// A translation failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateError {
    /// The rule (or "rules.rs").
    pub rule: String,
    /// What cannot be translated.
    pub message: String,
}

impl fmt::Display for TranslateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule `{}`: {}", self.rule, self.message)
    }
}

impl std::error::Error for TranslateError {}

/// One rule: its parameters (name, Rust type) and body.
pub struct Rule {
    /// Function name.
    pub name: String,
    /// Parameters in order.
    pub params: Vec<(String, String)>,
    body: syn::Block,
}

/// All rules of the model, by name.
pub struct Rules {
    rules: HashMap<String, Rule>,
}

impl Rules {
    /// Parses the embedded rules.rs.
    pub fn load() -> Result<Rules, TranslateError> {
        Rules::parse(RULES_SOURCE)
    }

    /// Parses a rules source text.
    pub fn parse(source: &str) -> Result<Rules, TranslateError> {
        let file = syn::parse_file(source).map_err(|e| TranslateError {
            rule: "rules.rs".into(),
            message: e.to_string(),
        })?;
        let mut rules = HashMap::new();
        for item in file.items {
            let Item::Fn(f) = item else { continue };
            let name = f.sig.ident.to_string();
            let mut params = Vec::new();
            for arg in &f.sig.inputs {
                let FnArg::Typed(pt) = arg else {
                    return Err(TranslateError {
                        rule: name,
                        message: "methods are not rules".into(),
                    });
                };
                let Pat::Ident(id) = &*pt.pat else {
                    return Err(TranslateError {
                        rule: name,
                        message: "parameters must be plain names".into(),
                    });
                };
                params.push((id.ident.to_string(), type_name(&pt.ty)));
            }
            rules.insert(
                name.clone(),
                Rule {
                    name,
                    params,
                    body: *f.block,
                },
            );
        }
        Ok(Rules { rules })
    }

    /// The rule called `name`.
    pub fn get(&self, name: &str) -> Option<&Rule> {
        self.rules.get(name)
    }

    /// Names of every rule, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.rules.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Rule `name` with each parameter bound to the C text in `args`.
    pub fn expand(&self, name: &str, args: &[(&str, &str)]) -> Result<CExpr, TranslateError> {
        let rule = self.get(name).ok_or_else(|| TranslateError {
            rule: name.into(),
            message: "no such rule in rules.rs".into(),
        })?;
        let err = |m: String| TranslateError {
            rule: name.into(),
            message: m,
        };
        let mut env: HashMap<String, (CExpr, bool)> = HashMap::new();
        for (p, ty) in &rule.params {
            let Some((_, c)) = args.iter().find(|(a, _)| a == p) else {
                return Err(err(format!("parameter `{p}` is not bound")));
            };
            env.insert(p.clone(), (c_atom(c), ty == "bool"));
        }
        for (a, _) in args {
            if !rule.params.iter().any(|(p, _)| p == a) {
                return Err(err(format!("no parameter `{a}`")));
            }
        }
        let mut cx = Cx { rule: name, env };
        cx.block(&rule.body)
    }
}

fn type_name(t: &Type) -> String {
    match t {
        Type::Path(p) => p
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// C text as an operand: bare when it binds tightest, parenthesised
/// otherwise.
fn c_atom(text: &str) -> CExpr {
    let t = text.trim();
    let simple = t
        .replace("->", "")
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.[]".contains(c))
        || (t.starts_with('(') && t.ends_with(')') && balanced_inner(t))
        || is_call(t);
    if simple {
        CExpr::Atom(t.to_owned())
    } else {
        CExpr::Atom(format!("({t})"))
    }
}

fn balanced_inner(t: &str) -> bool {
    let mut depth = 0i32;
    for (i, c) in t.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 && i != t.len() - 1 {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0
}

fn is_call(t: &str) -> bool {
    match t.find('(') {
        Some(i) if i > 0 => {
            t[..i]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
                && balanced_inner(&t[i..])
        }
        _ => false,
    }
}

struct Cx<'a> {
    rule: &'a str,
    /// Name → (C expression, is bool).
    env: HashMap<String, (CExpr, bool)>,
}

impl Cx<'_> {
    fn err(&self, m: impl Into<String>) -> TranslateError {
        TranslateError {
            rule: self.rule.into(),
            message: m.into(),
        }
    }

    fn block(&mut self, b: &syn::Block) -> Result<CExpr, TranslateError> {
        let mut tail = None;
        for (i, st) in b.stmts.iter().enumerate() {
            match st {
                Stmt::Local(l) => {
                    let Pat::Ident(id) = &l.pat else {
                        return Err(self.err("`let` must bind a plain name"));
                    };
                    let init = l
                        .init
                        .as_ref()
                        .ok_or_else(|| self.err("`let` without a value"))?;
                    let v = self.expr(&init.expr)?;
                    let is_bool = self.is_bool(&init.expr);
                    self.env.insert(id.ident.to_string(), (v, is_bool));
                }
                Stmt::Expr(e, None) if i == b.stmts.len() - 1 => tail = Some(self.expr(e)?),
                _ => return Err(self.err("only `let`s and a final expression are translatable")),
            }
        }
        tail.ok_or_else(|| self.err("the body has no final expression"))
    }

    fn is_bool(&self, e: &Expr) -> bool {
        match e {
            Expr::Binary(b) => matches!(
                b.op,
                RBin::Eq(_)
                    | RBin::Ne(_)
                    | RBin::Lt(_)
                    | RBin::Le(_)
                    | RBin::Gt(_)
                    | RBin::Ge(_)
                    | RBin::And(_)
                    | RBin::Or(_)
            ),
            Expr::Unary(u) => matches!(u.op, UnOp::Not(_)) && self.is_bool(&u.expr),
            Expr::Paren(p) => self.is_bool(&p.expr),
            Expr::Lit(l) => matches!(l.lit, Lit::Bool(_)),
            Expr::Path(p) => p
                .path
                .get_ident()
                .is_some_and(|i| self.env.get(&i.to_string()).is_some_and(|(_, b)| *b)),
            Expr::If(i) => i
                .then_branch
                .stmts
                .last()
                .is_some_and(|s| matches!(s, Stmt::Expr(e, None) if self.is_bool(e))),
            _ => false,
        }
    }

    fn expr(&mut self, e: &Expr) -> Result<CExpr, TranslateError> {
        Ok(match e {
            Expr::Paren(p) => self.expr(&p.expr)?,
            Expr::Group(g) => self.expr(&g.expr)?,
            Expr::Lit(l) => match &l.lit {
                Lit::Int(i) => CExpr::Atom(i.base10_digits().to_owned()),
                Lit::Bool(b) => CExpr::Atom(if b.value { "true" } else { "false" }.into()),
                _ => return Err(self.err("only integer and bool literals")),
            },
            Expr::Path(p) => {
                let id = p
                    .path
                    .get_ident()
                    .ok_or_else(|| self.err("qualified paths are not translatable"))?
                    .to_string();
                match self.env.get(&id) {
                    Some((c, _)) => c.clone(),
                    // Kernel constants keep their names (kernel.rs mirrors them).
                    None if id
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') =>
                    {
                        CExpr::Atom(id)
                    }
                    None => return Err(self.err(format!("unknown name `{id}`"))),
                }
            }
            Expr::Unary(u) => {
                let inner = self.expr(&u.expr)?;
                match u.op {
                    UnOp::Not(_) if self.is_bool(&u.expr) => negate(inner),
                    UnOp::Not(_) => CExpr::BitNot(Box::new(inner)),
                    _ => return Err(self.err("only `!` is translatable among unary operators")),
                }
            }
            Expr::Cast(c) => CExpr::Cast(type_name(&c.ty), Box::new(self.expr(&c.expr)?)),
            Expr::Binary(b) => {
                let (l, r) = (self.expr(&b.left)?, self.expr(&b.right)?);
                let op = match b.op {
                    // Constant arithmetic is checked by rustc at compile time;
                    // anything else must say how it wraps.
                    RBin::Add(_) | RBin::Sub(_) | RBin::Mul(_) | RBin::Shl(_)
                        if !(is_const(&l) && is_const(&r)) =>
                    {
                        return Err(self.err("plain + - * << can overflow-panic in Rust; the model uses wrapping_* explicitly"));
                    }
                    RBin::Add(_) => BinOp::Add,
                    RBin::Sub(_) => BinOp::Sub,
                    RBin::Mul(_) => BinOp::Mul,
                    RBin::Shl(_) => BinOp::Shl,
                    RBin::Shr(_) => BinOp::Shr,
                    RBin::Lt(_) => BinOp::Lt,
                    RBin::Le(_) => BinOp::Le,
                    RBin::Gt(_) => BinOp::Gt,
                    RBin::Ge(_) => BinOp::Ge,
                    RBin::Eq(_) => BinOp::Eq,
                    RBin::Ne(_) => BinOp::Ne,
                    RBin::BitAnd(_) => BinOp::BitAnd,
                    RBin::BitXor(_) => BinOp::BitXor,
                    RBin::BitOr(_) => BinOp::BitOr,
                    RBin::And(_) => BinOp::And,
                    RBin::Or(_) => BinOp::Or,
                    _ => return Err(self.err("unsupported binary operator")),
                };
                simplify_bool_compare(op, l, r)
            }
            Expr::MethodCall(m) => {
                let recv = self.expr(&m.receiver)?;
                let args: Vec<CExpr> = m
                    .args
                    .iter()
                    .map(|a| self.expr(a))
                    .collect::<Result<_, _>>()?;
                let op = match m.method.to_string().as_str() {
                    "wrapping_add" => BinOp::Add,
                    "wrapping_sub" => BinOp::Sub,
                    "wrapping_mul" => BinOp::Mul,
                    "wrapping_shl" => BinOp::Shl,
                    "wrapping_shr" => BinOp::Shr,
                    other => return Err(self.err(format!("method `{other}` is not translatable"))),
                };
                let [arg] = <[CExpr; 1]>::try_from(args)
                    .map_err(|_| self.err("wrapping_* takes one argument"))?;
                CExpr::Bin(op, Box::new(recv), Box::new(arg))
            }
            Expr::Call(c) => {
                let Expr::Path(p) = &*c.func else {
                    return Err(self.err("only named functions can be called"));
                };
                let f = p
                    .path
                    .get_ident()
                    .ok_or_else(|| self.err("qualified call"))?
                    .to_string();
                if f != "max" && f != "min" {
                    return Err(
                        self.err(format!("call to `{f}`: only the kernel's max() and min()"))
                    );
                }
                let args = c
                    .args
                    .iter()
                    .map(|a| self.expr(a))
                    .collect::<Result<_, _>>()?;
                CExpr::Call(f, args)
            }
            Expr::If(i) => {
                let cond = self.expr(&i.cond)?;
                let then = self.block(&i.then_branch)?;
                let Some((_, els)) = &i.else_branch else {
                    return Err(self.err("`if` without `else`"));
                };
                let els = match &**els {
                    Expr::Block(b) => self.block(&b.block)?,
                    other => self.expr(other)?,
                };
                CExpr::Cond(Box::new(cond), Box::new(then), Box::new(els))
            }
            Expr::Block(b) => self.block(&b.block)?,
            _ => return Err(self.err("expression kind not translatable")),
        })
    }
}

/// A kernel constant or literal (or arithmetic on them).
fn is_const(e: &CExpr) -> bool {
    match e {
        CExpr::Atom(a) => a
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
        CExpr::Bin(_, l, r) => is_const(l) && is_const(r),
        _ => false,
    }
}

fn negate(e: CExpr) -> CExpr {
    match e {
        CExpr::Atom(ref a) if a == "true" => CExpr::Atom("false".into()),
        CExpr::Atom(ref a) if a == "false" => CExpr::Atom("true".into()),
        CExpr::Not(inner) => *inner,
        other => CExpr::Not(Box::new(other)),
    }
}

/// `x == true` → `x`, `x == false` → `!x` (and `!=` alike): a rule's bool
/// parameter bound to a constant reads as kernel code would.
fn simplify_bool_compare(op: BinOp, l: CExpr, r: CExpr) -> CExpr {
    let lit = |e: &CExpr| match e {
        CExpr::Atom(a) if a == "true" => Some(true),
        CExpr::Atom(a) if a == "false" => Some(false),
        _ => None,
    };
    match (op, lit(&r)) {
        (BinOp::Eq, Some(true)) | (BinOp::Ne, Some(false)) => strip_ne_zero(l),
        (BinOp::Eq, Some(false)) | (BinOp::Ne, Some(true)) => negate(strip_ne_zero(l)),
        _ => CExpr::Bin(op, Box::new(l), Box::new(r)),
    }
}

/// In a boolean context `(x & m) != 0` reads as `x & m` in kernel code.
fn strip_ne_zero(e: CExpr) -> CExpr {
    match e {
        CExpr::Bin(BinOp::Ne, l, r)
            if matches!(&*r, CExpr::Atom(z) if z == "0")
                && matches!(&*l, CExpr::Bin(BinOp::BitAnd, ..)) =>
        {
            *l
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(rule: &str, args: &[(&str, &str)]) -> String {
        Rules::load()
            .expect("rules.rs parses")
            .expand(rule, args)
            .expect("translatable")
            .to_c()
    }

    #[test]
    fn invalidation_clamp_reads_like_the_kernel() {
        assert_eq!(
            c(
                "gmem_invalidate_gfn_start",
                &[
                    ("base_gfn", "slot->base_gfn"),
                    ("pgoff", "pgoff"),
                    ("start", "start")
                ]
            ),
            "slot->base_gfn + max(pgoff, start) - pgoff"
        );
        assert_eq!(
            c(
                "gmem_invalidate_gfn_end",
                &[
                    ("base_gfn", "slot->base_gfn"),
                    ("pgoff", "pgoff"),
                    ("npages", "slot->npages"),
                    ("end", "end")
                ]
            ),
            "slot->base_gfn + min(pgoff + slot->npages, end) - pgoff"
        );
    }

    #[test]
    fn fault_rule_polarity_and_precedence() {
        let args = |p| {
            [
                ("bits", "error_code"),
                ("mask", "PFERR_GUEST_ENC_MASK"),
                ("private_if_set", p),
            ]
        };
        assert_eq!(
            c("fault_private_by_mask", &args("true")),
            "error_code & PFERR_GUEST_ENC_MASK"
        );
        assert_eq!(
            c("fault_private_by_mask", &args("false")),
            "!(error_code & PFERR_GUEST_ENC_MASK)"
        );
        assert_eq!(
            c(
                "fault_private_by_mask",
                &[("bits", "gpa"), ("mask", "mask"), ("private_if_set", "set")]
            ),
            "((gpa & mask) != 0) == set"
        );
    }

    #[test]
    fn every_rule_translates() {
        let rules = Rules::load().expect("parses");
        for name in rules.names() {
            let rule = rules.get(name).expect("listed");
            let args: Vec<(&str, &str)> = rule
                .params
                .iter()
                .map(|(p, _)| (p.as_str(), p.as_str()))
                .collect();
            rules.expand(name, &args).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn refuses_what_it_cannot_translate() {
        let rules = Rules::parse("fn f(a: u64) -> u64 { a + 1 }").expect("parses");
        let e = rules
            .expand("f", &[("a", "x")])
            .expect_err("plain + is refused");
        assert!(e.message.contains("wrapping_"), "{e}");
        assert!(rules.expand("f", &[]).is_err());
    }
}
