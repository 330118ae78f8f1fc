//! A tiny classic-BPF assembler with forward labels.
//!
//! Conditional jumps in classic BPF carry 8-bit offsets. The assembler lets
//! the compiler jump to any label and, in a relaxation pass, rewrites every
//! conditional jump whose target is too far away into a conditional jump
//! over an unconditional `BPF_JA` (which has a 32-bit offset):
//!
//! ```text
//!   jeq k, jt=0, jf=1      ; taken -> next insn, not taken -> skip it
//!   ja  far_target
//! ```
//!
//! Relaxation only ever grows instructions, so it reaches a fixed point.

use libc::sock_filter;

use crate::SeccompError;

/// Kernel limit on the length of a classic BPF program.
pub const BPF_MAXINSNS: usize = 4096;

pub(crate) const BPF_LD: u16 = 0x00;
pub(crate) const BPF_ALU: u16 = 0x04;
pub(crate) const BPF_JMP: u16 = 0x05;
pub(crate) const BPF_RET: u16 = 0x06;
pub(crate) const BPF_W: u16 = 0x00;
pub(crate) const BPF_ABS: u16 = 0x20;
pub(crate) const BPF_AND: u16 = 0x50;
pub(crate) const BPF_JA: u16 = 0x00;
pub(crate) const BPF_JEQ: u16 = 0x10;
pub(crate) const BPF_JGT: u16 = 0x20;
pub(crate) const BPF_JGE: u16 = 0x30;
pub(crate) const BPF_K: u16 = 0x00;

/// A conditional jump operator (always against the constant `k`, unsigned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cond {
    Eq,
    Gt,
    Ge,
}

impl Cond {
    fn code(self) -> u16 {
        BPF_JMP
            | BPF_K
            | match self {
                Cond::Eq => BPF_JEQ,
                Cond::Gt => BPF_JGT,
                Cond::Ge => BPF_JGE,
            }
    }
}

/// A forward label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Label(u32);

/// Where a conditional branch goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tgt {
    /// The instruction right after the jump (fall through).
    Next,
    /// A label bound later in the program.
    To(Label),
}

#[derive(Clone, Copy, Debug)]
enum Item {
    Stmt(sock_filter),
    Jump {
        cond: Cond,
        k: u32,
        jt: Tgt,
        jf: Tgt,
    },
    Ja(Label),
    Bind(Label),
}

/// Program under construction.
#[derive(Default)]
pub(crate) struct Asm {
    items: Vec<Item>,
    labels: u32,
}

const fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

impl Asm {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Asm {
            items: Vec::with_capacity(n),
            labels: 0,
        }
    }

    pub(crate) fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    pub(crate) fn bind(&mut self, l: Label) {
        self.items.push(Item::Bind(l));
    }

    /// `A = *(u32 *)(seccomp_data + off)`
    pub(crate) fn load(&mut self, off: u32) {
        self.items
            .push(Item::Stmt(stmt(BPF_LD | BPF_W | BPF_ABS, off)));
    }

    /// `A &= k`
    pub(crate) fn and(&mut self, k: u32) {
        self.items
            .push(Item::Stmt(stmt(BPF_ALU | BPF_AND | BPF_K, k)));
    }

    /// `return k`
    pub(crate) fn ret(&mut self, k: u32) {
        self.items.push(Item::Stmt(stmt(BPF_RET | BPF_K, k)));
    }

    /// `if A <cond> k goto jt else goto jf`
    pub(crate) fn jump(&mut self, cond: Cond, k: u32, jt: Tgt, jf: Tgt) {
        if jt == jf {
            if let Tgt::To(l) = jt {
                self.ja(l);
            }
            return;
        }
        self.items.push(Item::Jump { cond, k, jt, jf });
    }

    /// `goto l`
    pub(crate) fn ja(&mut self, l: Label) {
        self.items.push(Item::Ja(l));
    }

    /// Resolves labels and produces the final program.
    pub(crate) fn finish(self) -> Result<Vec<sock_filter>, SeccompError> {
        let n = self.items.len();
        // `long[i]`: jump item i is emitted in its long form.
        let mut long = vec![false; n];
        let mut pos = vec![0usize; n];
        let mut label_pos = vec![usize::MAX; self.labels as usize];

        let size = |item: &Item, long: bool| -> usize {
            match *item {
                Item::Bind(_) => 0,
                Item::Stmt(_) | Item::Ja(_) => 1,
                Item::Jump { jt, jf, .. } => {
                    if !long {
                        1
                    } else {
                        1 + usize::from(jt != Tgt::Next) + usize::from(jf != Tgt::Next)
                    }
                }
            }
        };

        let total = loop {
            // Lay out with the current choice of forms.
            let mut p = 0usize;
            for (i, item) in self.items.iter().enumerate() {
                pos[i] = p;
                if let Item::Bind(Label(l)) = item {
                    label_pos[*l as usize] = p;
                }
                p += size(item, long[i]);
            }
            if p > BPF_MAXINSNS * 4 {
                // Hopeless already; stop relaxing and report.
                return Err(SeccompError::TooLong(p));
            }
            // Widen every short conditional jump that cannot reach.
            let mut changed = false;
            for (i, item) in self.items.iter().enumerate() {
                if let Item::Jump { jt, jf, .. } = *item {
                    if long[i] {
                        continue;
                    }
                    let from = pos[i] + 1;
                    let far = |t: Tgt| match t {
                        Tgt::Next => false,
                        Tgt::To(Label(l)) => label_pos[l as usize]
                            .checked_sub(from)
                            .filter(|d| *d <= 255)
                            .is_none(),
                    };
                    if far(jt) || far(jf) {
                        long[i] = true;
                        changed = true;
                    }
                }
            }
            if !changed {
                break p;
            }
        };

        if total > BPF_MAXINSNS {
            return Err(SeccompError::TooLong(total));
        }

        let mut out = Vec::with_capacity(total);
        for (i, item) in self.items.iter().enumerate() {
            let here = pos[i];
            // Offset from the instruction *after* `at` to label `l`.
            let off = |at: usize, l: Label| -> Result<usize, SeccompError> {
                let target = label_pos[l.0 as usize];
                if target == usize::MAX || target < at + 1 {
                    return Err(internal("backward or unbound label"));
                }
                Ok(target - (at + 1))
            };
            match *item {
                Item::Bind(_) => {}
                Item::Stmt(s) => out.push(s),
                Item::Ja(l) => out.push(stmt(BPF_JMP | BPF_JA, off(here, l)? as u32)),
                Item::Jump { cond, k, jt, jf } => {
                    let code = cond.code();
                    if !long[i] {
                        let t = match jt {
                            Tgt::Next => 0,
                            Tgt::To(l) => off(here, l)?,
                        };
                        let f = match jf {
                            Tgt::Next => 0,
                            Tgt::To(l) => off(here, l)?,
                        };
                        let (Ok(t), Ok(f)) = (u8::try_from(t), u8::try_from(f)) else {
                            return Err(internal("short jump out of range"));
                        };
                        out.push(sock_filter {
                            code,
                            jt: t,
                            jf: f,
                            k,
                        });
                        continue;
                    }
                    match (jt, jf) {
                        (Tgt::To(t), Tgt::Next) => {
                            out.push(sock_filter {
                                code,
                                jt: 0,
                                jf: 1,
                                k,
                            });
                            out.push(stmt(BPF_JMP | BPF_JA, off(here + 1, t)? as u32));
                        }
                        (Tgt::Next, Tgt::To(f)) => {
                            out.push(sock_filter {
                                code,
                                jt: 1,
                                jf: 0,
                                k,
                            });
                            out.push(stmt(BPF_JMP | BPF_JA, off(here + 1, f)? as u32));
                        }
                        (Tgt::To(t), Tgt::To(f)) => {
                            out.push(sock_filter {
                                code,
                                jt: 0,
                                jf: 1,
                                k,
                            });
                            out.push(stmt(BPF_JMP | BPF_JA, off(here + 1, t)? as u32));
                            out.push(stmt(BPF_JMP | BPF_JA, off(here + 2, f)? as u32));
                        }
                        (Tgt::Next, Tgt::Next) => {
                            out.push(sock_filter {
                                code,
                                jt: 0,
                                jf: 0,
                                k,
                            });
                        }
                    }
                }
            }
        }
        debug_assert_eq!(out.len(), total);
        Ok(out)
    }
}

fn internal(what: &str) -> SeccompError {
    SeccompError::invalid("linux.seccomp", format!("internal compiler error: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_jumps_are_relaxed() {
        let mut a = Asm::default();
        let far = a.label();
        a.load(0);
        a.jump(Cond::Eq, 7, Tgt::To(far), Tgt::Next);
        for _ in 0..300 {
            a.ret(1);
        }
        a.bind(far);
        a.ret(2);
        let p = a.finish().expect("assembles");
        assert_eq!(p.len(), 1 + 2 + 300 + 1);
        assert_eq!((p[1].jt, p[1].jf), (0, 1));
        assert_eq!(p[2].code, BPF_JMP | BPF_JA);
        assert_eq!(p[2].k, 300);
        assert_eq!(p[3 + 300].k, 2);
    }

    #[test]
    fn short_jumps_stay_short() {
        let mut a = Asm::default();
        let l = a.label();
        a.jump(Cond::Ge, 5, Tgt::Next, Tgt::To(l));
        a.ret(1);
        a.bind(l);
        a.ret(2);
        let p = a.finish().expect("assembles");
        assert_eq!(p.len(), 3);
        assert_eq!((p[0].jt, p[0].jf), (0, 1));
    }

    #[test]
    fn too_long_is_an_error() {
        let mut a = Asm::default();
        for _ in 0..5000 {
            a.ret(0);
        }
        let e = a.finish().expect_err("too long");
        assert!(e.to_string().contains("4096"), "{e}");
    }
}
