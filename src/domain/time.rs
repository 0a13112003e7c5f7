//! Reading the times the database's use-case functions answer in their JSON
//! (`2026-12-05T02:27:00.123456+00:00`: PostgreSQL's ISO form, in the
//! session's time zone) without chrono's general RFC 3339 parser, which
//! cost 4.7k of the server's 102k instructions per purchase for an order's
//! two times (bench/results/20261205T0227Z-profile.md). Anything but that
//! exact shape (a leap second, an offset with seconds, a year beyond 9999)
//! is read by chrono, as before.

use std::borrow::Cow;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeDelta, Utc};
use serde::de;
use serde::{Deserialize, Deserializer};

/// `deserialize_with` of a record's time.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    let Text(text) = Text::deserialize(deserializer)?;
    match fast(&text) {
        Some(at) => Ok(at),
        // What chrono's own `Deserialize for DateTime<Utc>` does.
        None => text
            .parse::<DateTime<FixedOffset>>()
            .map(|at| at.with_timezone(&Utc))
            .map_err(de::Error::custom),
    }
}

/// The time's text, borrowed from the input unless it had to be unescaped.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, or `None`.
fn fast(text: &str) -> Option<DateTime<Utc>> {
    let bytes = text.as_bytes();
    let number = |from: usize, to: usize| -> Option<u32> {
        let digits = bytes.get(from..to)?;
        digits.iter().try_fold(0_u32, |value, &digit| {
            digit
                .is_ascii_digit()
                .then(|| value * 10 + u32::from(digit - b'0'))
        })
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if separators
        .iter()
        .any(|&(at, separator)| bytes.get(at) != Some(&separator))
    {
        return None;
    }
    let year = i32::try_from(number(0, 4)?).ok()?;
    let (month, day) = (number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    let mut at = 19;
    let mut nanos = 0;
    if bytes.get(at) == Some(&b'.') {
        let digits = bytes[at + 1..]
            .iter()
            .take_while(|byte| byte.is_ascii_digit())
            .count();
        if !(1..=9).contains(&digits) {
            return None;
        }
        nanos = number(at + 1, at + 1 + digits)? * 10_u32.pow(9 - digits as u32);
        at += 1 + digits;
    }
    let offset_seconds = match bytes.get(at..)? {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (hours, minutes) = (number(at + 1, at + 3)?, number(at + 4, at + 6)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = i64::from(hours * 3600 + minutes * 60);
            if *sign == b'-' { -seconds } else { seconds }
        }
        _ => return None,
    };
    // Seconds of 60 (a leap second) are not accepted here: chrono reads them.
    let local = NaiveDate::from_ymd_opt(year, month, day)?.and_hms_nano_opt(
        hour,
        minute,
        if second < 60 { second } else { return None },
        nanos,
    )?;
    let utc = local.checked_sub_signed(TimeDelta::seconds(offset_seconds))?;
    Some(utc.and_utc())
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, FixedOffset, Utc};
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Ours(#[serde(deserialize_with = "super::deserialize")] DateTime<Utc>);

    fn chrono(text: &str) -> Option<DateTime<Utc>> {
        serde_json::from_value::<DateTime<Utc>>(serde_json::Value::from(text)).ok()
    }

    fn ours(text: &str) -> Option<DateTime<Utc>> {
        // Both ways a deserializer may hand over the string: borrowed from
        // the input, and from a `Value`.
        let json = serde_json::to_string(text).expect("a JSON string");
        let borrowed = serde_json::from_str::<Ours>(&json).ok().map(|ours| ours.0);
        let from_value = serde_json::from_value::<Ours>(serde_json::Value::from(text))
            .ok()
            .map(|ours| ours.0);
        assert_eq!(borrowed, from_value, "{text}");
        borrowed
    }

    #[test]
    fn times_are_read_exactly_as_chrono_reads_them() {
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        let offsets = [
            "Z", "+00:00", "-05:30", "+14:00", "+01:00", "-00:00", "+23:59",
        ];
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let seconds = (seed % 253_402_300_800) as i64 - 62_167_219_200;
            let at = DateTime::<Utc>::from_timestamp(seconds, 0).expect("in range");
            let digits = (seed >> 40) as usize % 10;
            let fraction: String = (seed >> 8)
                .to_string()
                .chars()
                .chain(std::iter::repeat('7'))
                .take(digits)
                .collect();
            let offset = offsets[(seed >> 20) as usize % offsets.len()];
            let text = format!(
                "{}{}{fraction}{offset}",
                at.format("%Y-%m-%dT%H:%M:%S"),
                if digits > 0 { "." } else { "" }
            );
            assert_eq!(ours(&text), chrono(&text), "{text}");
            assert!(ours(&text).is_some(), "{text}");
        }
        for text in [
            "2026-12-05T02:27:00.123456+00:00",
            "2026-12-05T02:27:00+00:00",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999-23:59",
            // Left to chrono, or refused by both.
            "2016-12-31T23:59:60Z",
            "2026-12-05T02:27:00.1234567890Z",
            "2026-12-05T02:27:00+00:00:30",
            "2026-12-05T02:27:00+0000",
            "2026-12-05 02:27:00Z",
            "2026-12-05t02:27:00z",
            "2026-02-30T00:00:00Z",
            "2026-12-05T24:00:00Z",
            "2026-12-05T02:27:00.Z",
            "2026-12-05T02:27:00+24:00",
            "+12026-12-05T02:27:00Z",
            "2026-12-05T02:27",
            "",
            "not a time",
        ] {
            assert_eq!(ours(text), chrono(text), "{text}");
        }
        // chrono's own parse agrees on the offset form, whichever path read it.
        let parsed: DateTime<FixedOffset> = "2026-12-05T02:27:00.5-05:30".parse().expect("valid");
        assert_eq!(
            ours("2026-12-05T02:27:00.5-05:30"),
            Some(parsed.with_timezone(&Utc))
        );
    }
}
