//! Mesos duration strings: parsing and formatting of the `<decimal number><unit>` form.
//!
//! Mesos (through its `stout` library) writes durations as a decimal number immediately followed
//! by a unit, with no space: `250ms`, `2secs`, `1.5secs`, `15mins`. The units are `ns`, `us`,
//! `ms`, `secs`, `mins`, `hrs`, `days` and `weeks`. Agents pass such strings to executors in
//! `MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD`, `MESOS_RECOVERY_TIMEOUT` and
//! `MESOS_SUBSCRIPTION_BACKOFF_MAX`.
//!
//! ```
//! use std::time::Duration;
//! use mesos_sdk::duration::{format_duration, parse_duration};
//!
//! assert_eq!(parse_duration("1.5secs").unwrap(), Duration::from_millis(1500));
//! assert_eq!(format_duration(Duration::from_secs(900)), "15mins");
//! ```

use std::time::Duration;

/// Nanoseconds in one unit, for every unit Mesos knows, largest first.
const UNITS: &[(&str, u128)] = &[
    ("weeks", 7 * 24 * 3_600 * 1_000_000_000),
    ("days", 24 * 3_600 * 1_000_000_000),
    ("hrs", 3_600 * 1_000_000_000),
    ("mins", 60 * 1_000_000_000),
    ("secs", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

/// A string that is not a Mesos duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// The string is empty.
    #[error("empty duration string")]
    Empty,
    /// The string has a number but no unit after it (`"5"`).
    #[error(
        "duration '{0}' has no unit (expected one of ns, us, ms, secs, mins, hrs, days, weeks)"
    )]
    MissingUnit(String),
    /// The part before the unit is not a decimal number (`"secs"`, `"1.2.3secs"`, `"-1secs"`).
    #[error("duration '{0}' does not start with a decimal number")]
    InvalidNumber(String),
    /// The unit is not one Mesos knows (`"5s"`, `"5 secs"`).
    #[error(
        "duration '{input}' has unknown unit '{unit}' (expected one of ns, us, ms, secs, mins, hrs, days, weeks)"
    )]
    UnknownUnit {
        /// The whole input.
        input: String,
        /// The unit part as written.
        unit: String,
    },
    /// The value does not fit in a [`Duration`].
    #[error("duration '{0}' is too large")]
    Overflow(String),
}

/// Parses a Mesos duration string such as `15mins`, `2secs` or `1.5secs`.
///
/// The number is decimal, may carry a fractional part (`.5secs` and `1.secs` are accepted), and is
/// followed directly by one of the units `ns us ms secs mins hrs days weeks`. Fractions finer
/// than a nanosecond are rounded to the nearest nanosecond.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    if input.is_empty() {
        return Err(DurationError::Empty);
    }
    let split = input
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| DurationError::MissingUnit(input.to_owned()))?;
    let (number, unit) = input.split_at(split);
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (number, ""),
    };
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return Err(DurationError::InvalidNumber(input.to_owned()));
    }
    let unit_nanos = UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, nanos)| *nanos)
        .ok_or_else(|| DurationError::UnknownUnit {
            input: input.to_owned(),
            unit: unit.to_owned(),
        })?;
    let overflow = || DurationError::Overflow(input.to_owned());

    // Exact decimal arithmetic: whole * unit + fraction_digits * unit / 10^len(fraction).
    let whole_value: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| overflow())?
    };
    let mut nanos = whole_value.checked_mul(unit_nanos).ok_or_else(overflow)?;
    // Digits past the 20th are worth less than 10^-5 ns even in weeks: drop them.
    let fraction = &fraction[..fraction.len().min(20)];
    if !fraction.is_empty() {
        let digits: u128 = fraction.parse().map_err(|_| overflow())?;
        let scale = 10u128.pow(fraction.len() as u32);
        let scaled = digits.checked_mul(unit_nanos).ok_or_else(overflow)?;
        let rounded = scaled / scale + u128::from(scaled % scale * 2 >= scale);
        nanos = nanos.checked_add(rounded).ok_or_else(overflow)?;
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| overflow())?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// Formats a duration as a string Mesos parses back to exactly the same value.
///
/// Uses the largest unit that holds the duration as a whole number (`90s` is `"90secs"`,
/// `1.5s` is `"1500ms"`, zero is `"0ns"`).
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0ns".to_owned();
    }
    let (name, unit_nanos) = UNITS
        .iter()
        .find(|(_, unit_nanos)| nanos % unit_nanos == 0)
        .copied()
        .unwrap_or(("ns", 1));
    format!("{}{}", nanos / unit_nanos, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mesos_durations() {
        let table: &[(&str, Duration)] = &[
            ("0ns", Duration::ZERO),
            ("1ns", Duration::from_nanos(1)),
            ("250us", Duration::from_micros(250)),
            ("250ms", Duration::from_millis(250)),
            ("2secs", Duration::from_secs(2)),
            ("1.5secs", Duration::from_millis(1500)),
            ("0.5ms", Duration::from_micros(500)),
            (".5secs", Duration::from_millis(500)),
            ("1.secs", Duration::from_secs(1)),
            ("15mins", Duration::from_secs(900)),
            ("1.5mins", Duration::from_secs(90)),
            ("2hrs", Duration::from_secs(7_200)),
            ("1days", Duration::from_secs(86_400)),
            ("2weeks", Duration::from_secs(14 * 86_400)),
            ("0.000000001secs", Duration::from_nanos(1)),
            ("0.0000000004secs", Duration::ZERO),
            ("0.0000000006secs", Duration::from_nanos(1)),
            ("007secs", Duration::from_secs(7)),
        ];
        for (input, expected) in table {
            assert_eq!(parse_duration(input), Ok(*expected), "input {input:?}");
        }
    }

    #[test]
    fn rejects_what_mesos_rejects() {
        let table: &[(&str, DurationError)] = &[
            ("", DurationError::Empty),
            ("5", DurationError::MissingUnit("5".into())),
            ("1.5", DurationError::MissingUnit("1.5".into())),
            ("secs", DurationError::InvalidNumber("secs".into())),
            (".secs", DurationError::InvalidNumber(".secs".into())),
            (
                "1.2.3secs",
                DurationError::InvalidNumber("1.2.3secs".into()),
            ),
            ("-1secs", DurationError::InvalidNumber("-1secs".into())),
            (
                "5s",
                DurationError::UnknownUnit {
                    input: "5s".into(),
                    unit: "s".into(),
                },
            ),
            (
                "5 secs",
                DurationError::UnknownUnit {
                    input: "5 secs".into(),
                    unit: " secs".into(),
                },
            ),
            (
                "5SECS",
                DurationError::UnknownUnit {
                    input: "5SECS".into(),
                    unit: "SECS".into(),
                },
            ),
            (
                "5secs ",
                DurationError::UnknownUnit {
                    input: "5secs ".into(),
                    unit: "secs ".into(),
                },
            ),
            (
                "99999999999999999999999999weeks",
                DurationError::Overflow("99999999999999999999999999weeks".into()),
            ),
        ];
        for (input, expected) in table {
            assert_eq!(
                parse_duration(input).as_ref(),
                Err(expected),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn formats_with_the_largest_exact_unit() {
        let table: &[(Duration, &str)] = &[
            (Duration::ZERO, "0ns"),
            (Duration::from_nanos(7), "7ns"),
            (Duration::from_nanos(1_500), "1500ns"),
            (Duration::from_micros(3), "3us"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_secs(2), "2secs"),
            (Duration::from_secs(90), "90secs"),
            (Duration::from_secs(900), "15mins"),
            (Duration::from_secs(7_200), "2hrs"),
            (Duration::from_secs(86_400), "1days"),
            (Duration::from_secs(14 * 86_400), "2weeks"),
        ];
        for (duration, expected) in table {
            assert_eq!(format_duration(*duration), *expected, "{duration:?}");
        }
    }

    #[test]
    fn formatted_durations_parse_back() {
        for nanos in [
            0u64,
            1,
            999,
            1_000,
            1_000_001,
            2_500_000_000,
            604_800_000_000_000,
        ] {
            let duration = Duration::from_nanos(nanos);
            assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
        }
        let huge = Duration::new(u64::MAX, 999_999_999);
        assert_eq!(parse_duration(&format_duration(huge)), Ok(huge));
    }
}
