//! The small part of the DNS wire format (RFC 1035) that berth-dns needs:
//! reading a message's header and first question (following compression
//! pointers), and building answers of type A and PTR. Every read is bounds
//! checked: a malformed message is an `Err`, never a panic.

use std::net::{Ipv4Addr, Ipv6Addr};

pub const TYPE_A: u16 = 1;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_AAAA: u16 = 28;
pub const CLASS_IN: u16 = 1;

pub const HEADER_LEN: usize = 12;
const FLAG_QR: u16 = 0x8000;
const FLAG_AA: u16 = 0x0400;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const FLAG_RA: u16 = 0x0080;
const OPCODE_MASK: u16 = 0x7800;

pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_FORMERR: u8 = 1;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NOTIMP: u8 = 4;

/// Time to live of local answers, in seconds (Docker's embedded DNS uses 600).
pub const TTL: u32 = 600;
/// The size a plain DNS-over-UDP answer may have (no EDNS).
pub const UDP_LIMIT: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("message shorter than its content")]
    Truncated,
    #[error("bad name")]
    BadName,
    #[error("not exactly one question")]
    QuestionCount,
}

/// A message's fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    pub flags: u16,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

impl Header {
    pub fn parse(buf: &[u8]) -> Result<Header, WireError> {
        if buf.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let w = |i: usize| u16::from_be_bytes([buf[i], buf[i + 1]]);
        Ok(Header {
            id: w(0),
            flags: w(2),
            qdcount: w(4),
            ancount: w(6),
            nscount: w(8),
            arcount: w(10),
        })
    }

    pub fn is_response(&self) -> bool {
        self.flags & FLAG_QR != 0
    }

    pub fn opcode(&self) -> u8 {
        ((self.flags & OPCODE_MASK) >> 11) as u8
    }

    pub fn truncated(&self) -> bool {
        self.flags & FLAG_TC != 0
    }

    pub fn rcode(&self) -> u8 {
        (self.flags & 0x000f) as u8
    }
}

/// A domain name as labels, with the case the client sent (DNS 0x20
/// randomisation expects it back unchanged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    labels: Vec<Vec<u8>>,
}

impl Name {
    /// The name in dotted form, lower-cased, without a trailing dot ("" for
    /// the root). Non-ASCII bytes are kept as they are (lossy UTF-8).
    pub fn to_lower(&self) -> String {
        let mut s = String::new();
        for (i, l) in self.labels.iter().enumerate() {
            if i > 0 {
                s.push('.');
            }
            s.push_str(&String::from_utf8_lossy(l).to_ascii_lowercase());
        }
        s
    }

    pub fn labels(&self) -> &[Vec<u8>] {
        &self.labels
    }

    /// Builds a name from dotted text (a trailing dot is allowed).
    pub fn from_dotted(s: &str) -> Result<Name, WireError> {
        let s = s.strip_suffix('.').unwrap_or(s);
        let mut labels = Vec::new();
        if !s.is_empty() {
            for l in s.split('.') {
                if l.is_empty() || l.len() > 63 {
                    return Err(WireError::BadName);
                }
                labels.push(l.as_bytes().to_vec());
            }
        }
        let name = Name { labels };
        if name.wire_len() > 255 {
            return Err(WireError::BadName);
        }
        Ok(name)
    }

    fn wire_len(&self) -> usize {
        self.labels.iter().map(|l| l.len() + 1).sum::<usize>() + 1
    }

    fn write(&self, out: &mut Vec<u8>) {
        for l in &self.labels {
            out.push(l.len() as u8);
            out.extend_from_slice(l);
        }
        out.push(0);
    }
}

/// Reads the name at `pos`; returns it and the offset right after it (after
/// the first compression pointer, if any).
fn read_name(buf: &[u8], mut pos: usize) -> Result<(Name, usize), WireError> {
    let mut labels = Vec::new();
    let mut len = 1usize;
    let mut end = None;
    // Each pointer must go strictly backwards: no loops, at most buf.len() jumps.
    let mut limit = pos;
    loop {
        let b = *buf.get(pos).ok_or(WireError::Truncated)?;
        match b & 0xc0 {
            0x00 => {
                if b == 0 {
                    return Ok((Name { labels }, end.unwrap_or(pos + 1)));
                }
                let n = b as usize;
                let label = buf.get(pos + 1..pos + 1 + n).ok_or(WireError::Truncated)?;
                len += n + 1;
                if len > 255 {
                    return Err(WireError::BadName);
                }
                labels.push(label.to_vec());
                pos += 1 + n;
            }
            0xc0 => {
                let lo = *buf.get(pos + 1).ok_or(WireError::Truncated)?;
                let target = (((b & 0x3f) as usize) << 8) | lo as usize;
                if target >= limit {
                    return Err(WireError::BadName);
                }
                if end.is_none() {
                    end = Some(pos + 2);
                }
                limit = target;
                pos = target;
            }
            // 0x40 and 0x80: extended label types, obsolete.
            _ => return Err(WireError::BadName),
        }
    }
}

/// A message's question section (its only question).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: Name,
    pub qtype: u16,
    pub qclass: u16,
}

/// A message with its header and its single question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub question: Question,
}

impl Message {
    /// Parses the header and the one question of a query or response.
    pub fn parse(buf: &[u8]) -> Result<Message, WireError> {
        let header = Header::parse(buf)?;
        if header.qdcount != 1 {
            return Err(WireError::QuestionCount);
        }
        let (name, pos) = read_name(buf, HEADER_LEN)?;
        let t = buf.get(pos..pos + 4).ok_or(WireError::Truncated)?;
        Ok(Message {
            header,
            question: Question {
                name,
                qtype: u16::from_be_bytes([t[0], t[1]]),
                qclass: u16::from_be_bytes([t[2], t[3]]),
            },
        })
    }
}

/// The data of an answer record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rdata {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Ptr(Name),
}

fn reply_flags(query: &Header, rcode: u8, authoritative: bool) -> u16 {
    let mut f = FLAG_QR | FLAG_RA | (query.flags & (OPCODE_MASK | FLAG_RD)) | (rcode as u16 & 0xf);
    if authoritative {
        f |= FLAG_AA;
    }
    f
}

/// An answer to `query` (its question copied, each record named by a
/// pointer to it). Over UDP (`limit` 512) an answer that does not fit is
/// sent without records and with TC set, so that the client retries on TCP.
pub fn answer(query: &Message, rcode: u8, records: &[Rdata], limit: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    let h = &query.header;
    out.extend_from_slice(&h.id.to_be_bytes());
    out.extend_from_slice(&reply_flags(h, rcode, true).to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(records.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    query.question.name.write(&mut out);
    out.extend_from_slice(&query.question.qtype.to_be_bytes());
    out.extend_from_slice(&query.question.qclass.to_be_bytes());
    let question_end = out.len();
    for r in records {
        out.extend_from_slice(&[0xc0, HEADER_LEN as u8]);
        let rtype = match r {
            Rdata::A(_) => TYPE_A,
            Rdata::Aaaa(_) => TYPE_AAAA,
            Rdata::Ptr(_) => TYPE_PTR,
        };
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&TTL.to_be_bytes());
        match r {
            Rdata::A(ip) => {
                out.extend_from_slice(&4u16.to_be_bytes());
                out.extend_from_slice(&ip.octets());
            }
            Rdata::Aaaa(ip) => {
                out.extend_from_slice(&16u16.to_be_bytes());
                out.extend_from_slice(&ip.octets());
            }
            Rdata::Ptr(name) => {
                out.extend_from_slice(&(name.wire_len() as u16).to_be_bytes());
                name.write(&mut out);
            }
        }
    }
    if out.len() > limit {
        out.truncate(question_end);
        out[6] = 0;
        out[7] = 0;
        let flags = reply_flags(h, rcode, true) | FLAG_TC;
        out[2..4].copy_from_slice(&flags.to_be_bytes());
    }
    out
}

/// An error answer to a message of which only the header could be read:
/// the question is left out.
pub fn error_reply(header: &Header, rcode: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.extend_from_slice(&header.id.to_be_bytes());
    out.extend_from_slice(&reply_flags(header, rcode, false).to_be_bytes());
    out.extend_from_slice(&[0; 8]);
    out
}

/// An error answer (SERVFAIL, NOTIMP...) keeping the question.
pub fn error_answer(query: &Message, rcode: u8) -> Vec<u8> {
    let mut out = answer(query, rcode, &[], usize::MAX);
    let flags = reply_flags(&query.header, rcode, false);
    out[2..4].copy_from_slice(&flags.to_be_bytes());
    out
}

/// Replaces a message's id in place.
pub fn set_id(buf: &mut [u8], id: u16) {
    if buf.len() >= 2 {
        buf[..2].copy_from_slice(&id.to_be_bytes());
    }
}

/// The IPv4 address that an `in-addr.arpa` name stands for.
pub fn reverse_v4(name: &str) -> Option<Ipv4Addr> {
    let rest = name.strip_suffix(".in-addr.arpa")?;
    let parts: Vec<&str> = rest.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (i, p) in parts.iter().rev().enumerate() {
        if p.is_empty() || p.len() > 3 || (p.len() > 1 && p.starts_with('0')) {
            return None;
        }
        octets[i] = p.parse().ok()?;
    }
    Some(Ipv4Addr::from(octets))
}

/// The address of an `ip6.arpa` name: 32 hexadecimal nibbles, the last
/// first (`…1.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa`).
pub fn reverse_v6(name: &str) -> Option<Ipv6Addr> {
    let rest = name.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<&str> = rest.split('.').collect();
    if nibbles.len() != 32 {
        return None;
    }
    let mut v: u128 = 0;
    for n in nibbles.iter().rev() {
        let mut c = n.chars();
        let d = c.next()?.to_digit(16)?;
        if c.next().is_some() {
            return None;
        }
        v = (v << 4) | u128::from(d);
    }
    Some(Ipv6Addr::from(v))
}

/// A query message (for clients: the tests, `berth-dns`'s own checks).
pub fn query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, WireError> {
    let name = Name::from_dotted(name)?;
    let mut out = Vec::with_capacity(32);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&FLAG_RD.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    name.write(&mut out);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse_answers(buf: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let m = Message::parse(buf).unwrap();
        let (_, mut pos) = read_name(buf, HEADER_LEN).unwrap();
        pos += 4;
        let mut out = Vec::new();
        for _ in 0..m.header.ancount {
            let (_, p) = read_name(buf, pos).unwrap();
            let t = u16::from_be_bytes([buf[p], buf[p + 1]]);
            let len = u16::from_be_bytes([buf[p + 8], buf[p + 9]]) as usize;
            out.push((t, buf[p + 10..p + 10 + len].to_vec()));
            pos = p + 10 + len;
        }
        out
    }

    #[test]
    fn query_round_trip_keeps_case() {
        let q = query(0x1234, "Web.Example.", TYPE_A).unwrap();
        let m = Message::parse(&q).unwrap();
        assert_eq!(m.header.id, 0x1234);
        assert!(!m.header.is_response());
        assert_eq!(m.question.name.to_lower(), "web.example");
        assert_eq!(m.question.name.labels()[0], b"Web");
        assert_eq!(m.question.qtype, TYPE_A);
        assert_eq!(m.question.qclass, CLASS_IN);
    }

    #[test]
    fn answer_with_records() {
        let q = Message::parse(&query(7, "db", TYPE_A).unwrap()).unwrap();
        let a = answer(
            &q,
            RCODE_NOERROR,
            &[
                Rdata::A(Ipv4Addr::new(10, 0, 0, 2)),
                Rdata::A(Ipv4Addr::new(10, 0, 0, 3)),
            ],
            UDP_LIMIT,
        );
        let m = Message::parse(&a).unwrap();
        assert!(m.header.is_response());
        assert_eq!(m.header.id, 7);
        assert_eq!(m.header.rcode(), 0);
        assert_eq!(m.header.flags & FLAG_RD, FLAG_RD);
        assert_eq!(
            parse_answers(&a),
            vec![(TYPE_A, vec![10, 0, 0, 2]), (TYPE_A, vec![10, 0, 0, 3])]
        );
    }

    #[test]
    fn ptr_answer() {
        let q = Message::parse(&query(9, "2.0.17.172.in-addr.arpa", TYPE_PTR).unwrap()).unwrap();
        let a = answer(
            &q,
            RCODE_NOERROR,
            &[Rdata::Ptr(Name::from_dotted("web").unwrap())],
            UDP_LIMIT,
        );
        assert_eq!(parse_answers(&a), vec![(TYPE_PTR, b"\x03web\x00".to_vec())]);
    }

    #[test]
    fn too_big_for_udp_is_truncated() {
        let q = Message::parse(&query(1, "many", TYPE_A).unwrap()).unwrap();
        let recs: Vec<Rdata> = (0..40)
            .map(|i| Rdata::A(Ipv4Addr::new(10, 0, 0, i)))
            .collect();
        let a = answer(&q, RCODE_NOERROR, &recs, UDP_LIMIT);
        let h = Header::parse(&a).unwrap();
        assert!(h.truncated());
        assert_eq!(h.ancount, 0);
        assert!(a.len() <= UDP_LIMIT);
        let full = answer(&q, RCODE_NOERROR, &recs, usize::MAX);
        assert_eq!(Header::parse(&full).unwrap().ancount, 40);
    }

    #[test]
    fn compression_pointers_are_followed_backwards_only() {
        // A response whose question is fine and whose answer names a pointer.
        let q = query(1, "a.b", TYPE_A).unwrap();
        let mut m = q.clone();
        m.extend_from_slice(&[0xc0, 12]);
        assert_eq!(read_name(&m, q.len()).unwrap().0.to_lower(), "a.b");
        assert_eq!(read_name(&m, q.len()).unwrap().1, q.len() + 2);
        // A pointer to itself, or forwards, is refused.
        let mut bad = q[..12].to_vec();
        bad.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(Message::parse(&bad), Err(WireError::BadName));
        let mut fwd = q[..12].to_vec();
        fwd.extend_from_slice(&[0xc0, 14, 0, 0, 1, 0, 1]);
        assert_eq!(Message::parse(&fwd), Err(WireError::BadName));
    }

    #[test]
    fn names_longer_than_255_are_refused() {
        let mut m = query(1, "x", TYPE_A).unwrap()[..12].to_vec();
        for _ in 0..5 {
            m.push(63);
            m.extend_from_slice(&[b'a'; 63]);
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(Message::parse(&m), Err(WireError::BadName));
        assert!(Name::from_dotted(&"a.".repeat(130)).is_err());
        assert!(Name::from_dotted(&"a".repeat(64)).is_err());
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_v4("4.3.2.1.in-addr.arpa"),
            Some(Ipv4Addr::new(1, 2, 3, 4))
        );
        assert_eq!(reverse_v4("3.2.1.in-addr.arpa"), None);
        assert_eq!(reverse_v4("256.3.2.1.in-addr.arpa"), None);
        assert_eq!(reverse_v4("04.3.2.1.in-addr.arpa"), None);
        assert_eq!(reverse_v4("4.3.2.1.ip6.arpa"), None);
    }

    /// A small xorshift generator: the fuzz-ish tests need no crate.
    pub(crate) struct Rng(u64);
    impl Rng {
        pub(crate) fn new(seed: u64) -> Rng {
            Rng(seed | 1)
        }
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn random_and_truncated_bytes_never_panic() {
        let mut rng = Rng::new(0x9e3779b97f4a7c15);
        for _ in 0..20_000 {
            let len = (rng.next() % 80) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if buf.len() >= 6 && rng.next() & 1 == 0 {
                buf[4] = 0;
                buf[5] = 1; // one question: get past the count check
            }
            let _ = Message::parse(&buf);
            let _ = Header::parse(&buf);
        }
        let good = query(1, "some.name.example", TYPE_AAAA).unwrap();
        for cut in 0..good.len() {
            assert!(Message::parse(&good[..cut]).is_err(), "cut at {cut}");
        }
        // Random bytes after a valid header and count, and bit flips of a
        // valid query.
        for _ in 0..20_000 {
            let mut b = good.clone();
            let i = (rng.next() as usize) % b.len();
            b[i] ^= 1 << (rng.next() % 8);
            if let Ok(m) = Message::parse(&b) {
                let _ = answer(&m, RCODE_NOERROR, &[], UDP_LIMIT);
            }
        }
    }

    #[test]
    fn error_replies() {
        let q = Message::parse(&query(5, "x", 15).unwrap()).unwrap();
        let a = error_answer(&q, RCODE_SERVFAIL);
        let m = Message::parse(&a).unwrap();
        assert_eq!(m.header.rcode(), RCODE_SERVFAIL);
        assert_eq!(m.header.flags & FLAG_AA, 0);
        assert_eq!(m.question.qtype, 15);
        let e = error_reply(&q.header, RCODE_FORMERR);
        let h = Header::parse(&e).unwrap();
        assert_eq!((h.id, h.rcode(), h.qdcount), (5, RCODE_FORMERR, 0));
        assert!(h.is_response());
    }
}
