//! Sizes as Docker prints them (go-units' decimal units) and the progress bar of its pull
//! and push messages, for the CLI's output and the API's JSON messages alike.

/// Go's `%.{prec}g` of a size in decimal units, as Docker's
/// units.HumanSizeWithPrecision (HumanSize is precision 4).
pub fn human_size_prec(bytes: u64, prec: usize) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    let int_digits = if v < 1.0 {
        1
    } else {
        v.log10().floor() as usize + 1
    };
    let s = format!("{v:.*}", prec.saturating_sub(int_digits));
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    };
    format!("{s}{}", UNITS[i])
}

/// Docker's progress bar (jsonmessage's): `[=====>      ]  1.2MB/3.4MB`, sizes as
/// units.HumanSize (four significant digits); empty when the total is unknown.
pub fn progress_bar(current: u64, total: u64) -> String {
    const W: usize = 50;
    if total == 0 {
        return String::new();
    }
    let filled = (current.min(total) as u128 * W as u128 / total as u128) as usize;
    let mut b = String::from("[");
    if filled > 0 {
        b.push_str(&"=".repeat(filled - 1));
        b.push('>');
    }
    b.push_str(&" ".repeat(W - filled));
    b.push(']');
    format!(
        "{b}  {}/{}",
        human_size_prec(current, 4),
        human_size_prec(total, 4)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_bar() {
        assert_eq!(human_size_prec(32768, 4), "32.77kB");
        assert_eq!(human_size_prec(2814446, 4), "2.814MB");
        assert_eq!(human_size_prec(512, 4), "512B");
        assert_eq!(human_size_prec(0, 4), "0B");
        assert!(progress_bar(1, 2).starts_with("[========================>"));
        assert!(progress_bar(1, 2).ends_with("]  1B/2B"));
        assert_eq!(progress_bar(5, 0), "");
    }
}
