//! What the admin commands share besides the connection: text tables, JSON and stdout
//! output, and parsers for `key=value` lists and date-times. (The connection flags and the
//! runtime are in [`crate::client_args`].)

use std::io::Write;

use anyhow::{anyhow, bail, Context};

/// Writes `text` to stdout; a reader that went away (`| head`) is not an error.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write the output")
        }
        _ => Ok(()),
    }
}

/// `value` as pretty JSON, with a final newline.
pub fn json(value: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into());
    s.push('\n');
    s
}

/// A text table: left-aligned columns, two spaces apart, as Kafka's tools print them.
#[derive(Debug, Clone)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Self {
            rows: vec![header.iter().map(|h| h.to_string()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for r in &self.rows {
            let mut line = String::new();
            for (c, cell) in r.iter().enumerate() {
                if c > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                let pad = widths[c].saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `KEY=VALUE` (the value may contain `=`).
pub fn parse_kv(s: &str) -> anyhow::Result<(String, String)> {
    let Some((k, v)) = s.split_once('=') else {
        bail!("expected KEY=VALUE, got {s:?}")
    };
    let k = k.trim();
    if k.is_empty() {
        bail!("expected KEY=VALUE, got {s:?}");
    }
    Ok((k.to_string(), v.trim().to_string()))
}

/// Splits `a=1,b=[x,y],c=3` at the commas outside brackets, and takes the brackets off list
/// values (`b=x,y`), as `kafka-configs --add-config` does.
pub fn split_config_list(s: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in s.chars() {
        match c {
            '[' => depth += 1,
            ']' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| anyhow!("unbalanced ] in {s:?}"))?
            }
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if depth != 0 {
        bail!("unbalanced [ in {s:?}");
    }
    items.push(current);
    items
        .iter()
        .filter(|i| !i.trim().is_empty())
        .map(|i| {
            let (k, v) = parse_kv(i)?;
            let v = match v.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
                Some(list) => list.to_string(),
                None => v,
            };
            Ok((k, v))
        })
        .collect()
}

/// Milliseconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.fff]` followed by `Z`, `±HH:MM`,
/// `±HHMM` or nothing (UTC).
pub fn parse_datetime_ms(s: &str) -> anyhow::Result<i64> {
    let bad = || anyhow!("{s:?} is not a date-time like 2026-01-01T00:00:00Z");
    let (date, rest) = s.trim().split_once(['T', 't']).ok_or_else(bad)?;
    let mut d = date.splitn(3, '-');
    let (Some(y), Some(mo), Some(day)) = (d.next(), d.next(), d.next()) else {
        return Err(bad());
    };
    let year = digits(y, 4).ok_or_else(bad)?;
    let month = digits(mo, 2).ok_or_else(bad)?;
    let day = digits(day, 2).ok_or_else(bad)?;
    let (clock, zone) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (hms, fraction) = match clock.split_once('.') {
        Some((hms, f)) => (hms, Some(f)),
        None => (clock, None),
    };
    let mut t = hms.splitn(3, ':');
    let (Some(h), Some(mi), Some(sec)) = (t.next(), t.next(), t.next()) else {
        return Err(bad());
    };
    let (hour, minute, second) = (
        digits(h, 2).ok_or_else(bad)?,
        digits(mi, 2).ok_or_else(bad)?,
        digits(sec, 2).ok_or_else(bad)?,
    );
    let millis = match fraction {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            let f = format!("{f:0<3}");
            f[..3].parse::<i64>().map_err(|_| bad())?
        }
        Some(_) => return Err(bad()),
    };
    let offset_s = match zone {
        "" | "Z" | "z" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let z = &z[1..];
            let (zh, zm) = match z.split_once(':') {
                Some((zh, zm)) => (zh, zm),
                None if z.len() == 4 => z.split_at(2),
                None if z.len() == 2 => (z, "00"),
                None => return Err(bad()),
            };
            let (zh, zm) = (
                digits(zh, 2).ok_or_else(bad)?,
                digits(zm, 2).ok_or_else(bad)?,
            );
            if zh > 18 || zm > 59 {
                return Err(bad());
            }
            sign * (zh * 3600 + zm * 60)
        }
    };
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(bad());
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    Ok(secs * 1000 + millis)
}

/// `s` as a number if it has exactly `n` ASCII digits.
fn digits(s: &str, n: usize) -> Option<i64> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn date_times_are_read_as_utc_unless_they_say_otherwise() {
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(
            parse_datetime_ms("2026-01-01T00:00:00Z").unwrap(),
            1_767_225_600_000
        );
        assert_eq!(
            parse_datetime_ms("2026-01-01T00:00:00").unwrap(),
            1_767_225_600_000
        );
        assert_eq!(
            parse_datetime_ms("2000-02-29T12:34:56.789Z").unwrap(),
            951_827_696_789
        );
        assert_eq!(
            parse_datetime_ms("2000-02-29T14:34:56.7+02:00").unwrap(),
            951_827_696_700
        );
        assert_eq!(
            parse_datetime_ms("2000-02-29T07:04:56.789123-0530").unwrap(),
            951_827_696_789
        );
        assert_eq!(parse_datetime_ms("1969-12-31T23:59:59Z").unwrap(), -1000);
        for bad in [
            "2025-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-01-01 00:00:00",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00Z",
            "2026-1-01T00:00:00Z",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00+2:00",
            "2026-01-01T00:00:00Q",
            "yesterday",
        ] {
            assert!(parse_datetime_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn config_lists_split_outside_brackets() {
        assert_eq!(
            split_config_list("a=1,b=[x,y],c=k=v").unwrap(),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x,y".into()),
                ("c".into(), "k=v".into())
            ]
        );
        assert!(split_config_list("a=[1").is_err());
        assert!(split_config_list("a").is_err());
        assert!(split_config_list("=1").is_err());
        assert!(split_config_list("").unwrap().is_empty());
    }

    #[test]
    fn tables_align_columns_and_trim_line_ends() {
        let mut t = Table::new(&["TOPIC", "PARTITION", "X"]);
        t.row(vec!["orders".into(), "0".into(), "".into()]);
        t.row(vec!["a".into(), "10".into(), "y".into()]);
        assert_eq!(
            t.render(),
            "TOPIC   PARTITION  X\norders  0\na       10         y\n"
        );
    }
}
