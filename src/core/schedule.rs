//! Cron maths for `Backup.spec.schedule` and `spec.timeZone`.
//!
//! The accepted language is the one Kubernetes CronJob users already know:
//! five fields (minute hour day-of-month month day-of-week), the usual
//! `@daily`-style descriptors, and an IANA time zone given separately. The
//! parsing and searching is done by `croner`; this module pins its options to
//! that dialect and turns its errors into messages a user can act on.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::errors::CronError;
use croner::parser::{CronParser, Seconds, Year};

const FIELD_NAMES: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];
/// Allowed values per field, quoted in errors because croner's own messages
/// ("Number out of bounds.") do not give them.
const FIELD_RANGES: [&str; 5] = ["0-59", "0-23", "1-31", "1-12 or JAN-DEC", "0-7 or SUN-SAT"];
const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Why a schedule was refused or could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("schedule must not be empty")]
    Empty,
    /// Kubernetes CronJob refuses these prefixes too; the zone has its own field.
    #[error(
        "invalid schedule {expr:?}: CRON_TZ= and TZ= prefixes are not supported, set spec.timeZone instead"
    )]
    TimeZonePrefix { expr: String },
    #[error(
        "invalid schedule {expr:?}: schedule must have 5 fields (minute hour day-of-month month day-of-week), got {got}"
    )]
    FieldCount { expr: String, got: usize },
    #[error("invalid schedule {expr:?}: {reason}")]
    Invalid { expr: String, reason: String },
    #[error(
        "unknown time zone {name:?}: use an IANA name such as \"Europe/Copenhagen\" or \"UTC\""
    )]
    UnknownTimeZone { name: String },
    /// The search itself failed (in practice only near croner's year limits).
    #[error("cannot compute fire times for schedule {expr:?}: {source}")]
    Search {
        expr: String,
        #[source]
        source: CronError,
    },
}

/// A parsed cron schedule together with the time zone its fields are read in.
#[derive(Debug, Clone)]
pub struct Schedule {
    expr: String,
    cron: Cron,
    tz: Tz,
}

impl Schedule {
    /// Parses `expr` (5 fields or a descriptor) and an optional IANA zone
    /// (default UTC), refusing anything a CronJob user would not expect to work.
    pub fn parse(expr: &str, time_zone: Option<&str>) -> Result<Schedule, ScheduleError> {
        let expr = expr.trim();
        if expr.is_empty() {
            return Err(ScheduleError::Empty);
        }
        let invalid = |reason: String| ScheduleError::Invalid {
            expr: expr.to_string(),
            reason,
        };
        let upper = expr.to_ascii_uppercase();
        if upper.starts_with("CRON_TZ=") || upper.starts_with("TZ=") {
            return Err(ScheduleError::TimeZonePrefix {
                expr: expr.to_string(),
            });
        }
        let tz = match time_zone.map(str::trim) {
            None => Tz::UTC,
            Some(name) => name
                .parse::<Tz>()
                .map_err(|_| ScheduleError::UnknownTimeZone {
                    name: name.to_string(),
                })?,
        };

        // Descriptors are expanded here rather than by croner, which lacks
        // `@midnight` and would pass `@reboot`/`@every` on as garbage.
        let fields_text = if expr.starts_with('@') {
            descriptor(&expr.to_ascii_lowercase()).map_err(|r| invalid(r.to_string()))?
        } else {
            expr
        };
        let fields: Vec<&str> = fields_text.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(ScheduleError::FieldCount {
                expr: expr.to_string(),
                got: fields.len(),
            });
        }
        check_fields(&fields).map_err(invalid)?;

        // Seconds/years disallowed: exactly the 5 classic fields. `dom_and_dow`
        // stays off so a restricted day-of-month and day-of-week are ORed, as
        // in Vixie cron and Kubernetes (robfig/cron).
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .dom_and_dow(false)
            .alternative_weekdays(false)
            .sloppy_ranges(false)
            .build();
        let cron = parser.parse(&fields.join(" ")).map_err(|e| {
            invalid(failing_field(&parser, &fields).unwrap_or_else(|| croner_message(&e)))
        })?;

        // Refuse dates that never exist (e.g. "0 0 30 2 *") up front instead of
        // accepting a backup that silently never runs.
        match cron.find_next_occurrence(&DateTime::<Utc>::UNIX_EPOCH, false) {
            Ok(_) => {}
            Err(CronError::TimeSearchLimitExceeded) => {
                return Err(invalid(
                    "the schedule never matches a real date".to_string(),
                ));
            }
            Err(source) => {
                return Err(ScheduleError::Search {
                    expr: expr.to_string(),
                    source,
                });
            }
        }

        Ok(Schedule {
            expr: expr.to_string(),
            cron,
            tz,
        })
    }

    /// First fire time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Result<DateTime<Utc>, ScheduleError> {
        self.cron
            .find_next_occurrence(&after.with_timezone(&self.tz), false)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|source| self.search_error(source))
    }

    /// Newest fire time `t` with `since < t <= now`, if any.
    ///
    /// Used to detect a run missed while the operator was down. It is a single
    /// backward search from `now`, so its cost does not grow with how long ago
    /// `since` was.
    pub fn latest_due(
        &self,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, ScheduleError> {
        if since >= now {
            return Ok(None);
        }
        match self
            .cron
            .find_previous_occurrence(&now.with_timezone(&self.tz), true)
        {
            Ok(t) => {
                let t = t.with_timezone(&Utc);
                Ok((t > since).then_some(t))
            }
            // Nothing back to croner's lower year limit: nothing is due.
            Err(CronError::TimeSearchLimitExceeded) => Ok(None),
            Err(source) => Err(self.search_error(source)),
        }
    }

    /// The longest gap between consecutive fire times among the next `slots` after `from`:
    /// how old the newest backup of this schedule may be when nothing is wrong (a weekday-only
    /// schedule has a weekend gap, so the first gap alone is not enough). `None` for fewer
    /// than two slots.
    pub fn longest_gap(
        &self,
        from: DateTime<Utc>,
        slots: usize,
    ) -> Result<Option<TimeDelta>, ScheduleError> {
        let mut longest: Option<TimeDelta> = None;
        let mut previous = self.next_after(from)?;
        for _ in 1..slots {
            let next = self.next_after(previous)?;
            let gap = next - previous;
            longest = Some(longest.map_or(gap, |l| l.max(gap)));
            previous = next;
        }
        Ok(longest)
    }

    fn search_error(&self, source: CronError) -> ScheduleError {
        ScheduleError::Search {
            expr: self.expr.clone(),
            source,
        }
    }
}

/// Expands a lower-cased descriptor to its 5 fields.
fn descriptor(lower: &str) -> Result<&'static str, &'static str> {
    match lower {
        "@yearly" | "@annually" => Ok("0 0 1 1 *"),
        "@monthly" => Ok("0 0 1 * *"),
        "@weekly" => Ok("0 0 * * 0"),
        "@daily" | "@midnight" => Ok("0 0 * * *"),
        "@hourly" => Ok("0 * * * *"),
        d if d.starts_with("@reboot") => Err(
            "@reboot is not supported: backups need a clock schedule such as \"@daily\" or \"0 2 * * *\"",
        ),
        d if d.starts_with("@every") => {
            Err("@every is not supported: use a step such as \"*/30 * * * *\" or \"0 */6 * * *\"")
        }
        _ => Err(
            "unknown descriptor: use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly",
        ),
    }
}

/// Catches what croner lets through silently: it swaps names for numbers
/// across the whole string (so `MON` in the month field would mean January),
/// and it skips empty list items (`1,,2`).
fn check_fields(fields: &[&str]) -> Result<(), String> {
    for ((i, field), name) in fields.iter().enumerate().zip(FIELD_NAMES) {
        if field.split(',').any(str::is_empty) {
            return Err(format!("{name} field {field:?}: empty item in list"));
        }
        let words = field.split(|c: char| !c.is_ascii_alphabetic());
        // Shorter words are croner's L/W/LW extensions; croner judges those.
        for word in words.filter(|w| w.len() >= 3) {
            let upper = word.to_ascii_uppercase();
            let allowed = match i {
                3 => MONTH_NAMES.contains(&upper.as_str()),
                4 => DAY_NAMES.contains(&upper.as_str()),
                _ => false,
            };
            if !allowed {
                return Err(format!(
                    "{name} field {field:?}: {word:?} is not a valid name here (use JAN-DEC in month, SUN-SAT in day-of-week)"
                ));
            }
        }
    }
    Ok(())
}

/// croner's errors do not say which field is wrong; find it by parsing each
/// field alone with the others as `*`.
fn failing_field(parser: &CronParser, fields: &[&str]) -> Option<String> {
    let named = fields.iter().zip(FIELD_NAMES).zip(FIELD_RANGES);
    named.enumerate().find_map(|(i, ((field, name), range))| {
        let probe: Vec<&str> = (0..fields.len())
            .map(|j| if i == j { *field } else { "*" })
            .collect();
        let err = parser.parse(&probe.join(" ")).err()?;
        Some(format!(
            "{name} field {field:?} (allowed {range}): {}",
            croner_message(&err)
        ))
    })
}

/// croner's message without its "Component error: "-style prefix.
fn croner_message(e: &CronError) -> String {
    match e {
        CronError::InvalidPattern(m)
        | CronError::IllegalCharacters(m)
        | CronError::ComponentError(m) => m.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// Tuesday.
    const START: &str = "2025-01-21T15:30:00Z";

    fn next(expr: &str) -> DateTime<Utc> {
        Schedule::parse(expr, None)
            .unwrap()
            .next_after(t(START))
            .unwrap()
    }

    fn err(expr: &str, tz: Option<&str>) -> String {
        Schedule::parse(expr, tz).unwrap_err().to_string()
    }

    #[test]
    fn next_times_from_fixed_start() {
        let cases = [
            ("0 2 * * *", "2025-01-22T02:00:00Z"),
            ("0 */6 * * *", "2025-01-21T18:00:00Z"),
            ("0 */2 * * *", "2025-01-21T16:00:00Z"),
            ("*/5 * * * *", "2025-01-21T15:35:00Z"),
            ("* * * * *", "2025-01-21T15:31:00Z"),
            ("0 0 * * 0", "2025-01-26T00:00:00Z"),
            ("0 0 * * 7", "2025-01-26T00:00:00Z"),
            ("0 0 * * sun", "2025-01-26T00:00:00Z"),
            ("0 0 1 * *", "2025-02-01T00:00:00Z"),
            ("0 9-17 * * 1-5", "2025-01-21T16:00:00Z"),
            ("0 9 * * MON-FRI", "2025-01-22T09:00:00Z"),
            ("0 0 * * FRI-SUN", "2025-01-24T00:00:00Z"),
            ("0 0 1 JAN *", "2026-01-01T00:00:00Z"),
            ("@daily", "2025-01-22T00:00:00Z"),
            ("@midnight", "2025-01-22T00:00:00Z"),
            ("@hourly", "2025-01-21T16:00:00Z"),
            ("@weekly", "2025-01-26T00:00:00Z"),
            ("@monthly", "2025-02-01T00:00:00Z"),
            ("@yearly", "2026-01-01T00:00:00Z"),
            ("@annually", "2026-01-01T00:00:00Z"),
            ("  @DAILY \n", "2025-01-22T00:00:00Z"),
            ("\t0 2 * * *  ", "2025-01-22T02:00:00Z"),
        ];
        for (expr, want) in cases {
            assert_eq!(next(expr), t(want), "{expr}");
        }
    }

    #[test]
    fn next_after_is_strict() {
        let s = Schedule::parse("0 2 * * *", None).unwrap();
        let at = t("2025-01-22T02:00:00Z");
        assert_eq!(s.next_after(at).unwrap(), t("2025-01-23T02:00:00Z"));
        let just_before = t("2025-01-22T01:59:59.999Z");
        assert_eq!(s.next_after(just_before).unwrap(), at);
    }

    #[test]
    fn weekdays_roll_over_the_weekend() {
        let s = Schedule::parse("0 9-17 * * 1-5", None).unwrap();
        let fri_evening = t("2025-01-24T17:30:00Z");
        assert_eq!(
            s.next_after(fri_evening).unwrap(),
            t("2025-01-27T09:00:00Z")
        );
    }

    #[test]
    fn restricted_dom_and_dow_match_either() {
        // The 1st of the month OR any Monday (Vixie cron / Kubernetes).
        let s = Schedule::parse("0 0 1 * 1", None).unwrap();
        let mut at = t(START);
        let mut got = Vec::new();
        for _ in 0..4 {
            at = s.next_after(at).unwrap();
            got.push(at);
        }
        let want = [
            "2025-01-27T00:00:00Z", // Monday
            "2025-02-01T00:00:00Z", // Saturday the 1st
            "2025-02-03T00:00:00Z", // Monday
            "2025-02-10T00:00:00Z", // Monday
        ];
        assert_eq!(got, want.map(t));
    }

    #[test]
    fn time_zone_offsets_and_dst() {
        let ny = Schedule::parse("0 2 * * *", Some("America/New_York")).unwrap();
        assert_eq!(ny.next_after(t(START)).unwrap(), t("2025-01-22T07:00:00Z"));

        let cph = Schedule::parse("0 2 * * *", Some("Europe/Copenhagen")).unwrap();
        let run = |from: &str, n: usize| {
            let mut at = t(from);
            (0..n)
                .map(|_| {
                    at = cph.next_after(at).unwrap();
                    at
                })
                .collect::<Vec<_>>()
        };
        // Spring forward 2025-03-30 02:00 CET -> 03:00 CEST: the skipped 02:00
        // run happens at the first instant after the gap (03:00 CEST).
        let spring = [
            "2025-03-29T01:00:00Z",
            "2025-03-30T01:00:00Z",
            "2025-03-31T00:00:00Z",
        ];
        assert_eq!(run("2025-03-28T12:00:00Z", 3), spring.map(t));
        // Fall back 2025-10-26 03:00 CEST -> 02:00 CET: 02:00 happens twice,
        // the job runs once, at the first one.
        let autumn = [
            "2025-10-25T00:00:00Z",
            "2025-10-26T00:00:00Z",
            "2025-10-27T01:00:00Z",
        ];
        assert_eq!(run("2025-10-24T12:00:00Z", 3), autumn.map(t));
    }

    #[test]
    fn latest_due_cases() {
        let daily = Schedule::parse("0 2 * * *", None).unwrap();
        let now = t(START);
        // Last run was today's: nothing due.
        assert_eq!(
            daily.latest_due(t("2025-01-21T02:00:00Z"), now).unwrap(),
            None
        );
        // Last run yesterday: today's 02:00 was missed.
        assert_eq!(
            daily.latest_due(t("2025-01-20T02:00:00Z"), now).unwrap(),
            Some(t("2025-01-21T02:00:00Z"))
        );
        // Many missed: only the newest is reported.
        assert_eq!(
            daily.latest_due(t("2024-06-01T00:00:00Z"), now).unwrap(),
            Some(t("2025-01-21T02:00:00Z"))
        );
        // since >= now.
        assert_eq!(daily.latest_due(now, now).unwrap(), None);
        assert_eq!(
            daily.latest_due(t("2026-01-01T00:00:00Z"), now).unwrap(),
            None
        );

        // Years of a per-minute schedule: one backward search, not millions of steps.
        let every = Schedule::parse("* * * * *", None).unwrap();
        let since = t("2015-01-01T00:00:00Z");
        assert_eq!(
            every.latest_due(since, t("2025-01-21T15:30:30Z")).unwrap(),
            Some(t("2025-01-21T15:30:00Z"))
        );
        // `now` itself counts when it is a fire time.
        assert_eq!(every.latest_due(since, now).unwrap(), Some(now));

        let yearly = Schedule::parse("@yearly", None).unwrap();
        assert_eq!(
            yearly.latest_due(t("2001-01-01T00:00:00Z"), now).unwrap(),
            Some(t("2025-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn latest_due_agrees_with_next_after_across_dst() {
        let cph = Schedule::parse("0 2 * * *", Some("Europe/Copenhagen")).unwrap();
        assert_eq!(
            cph.latest_due(t("2025-03-29T12:00:00Z"), t("2025-03-30T05:00:00Z"))
                .unwrap(),
            Some(t("2025-03-30T01:00:00Z"))
        );
        // In the repeated hour the job ran once, at the first 02:00 (00:00Z);
        // the second 02:00 (01:00Z) must not look like a missed run.
        assert_eq!(
            cph.latest_due(t("2025-10-25T12:00:00Z"), t("2025-10-26T01:30:00Z"))
                .unwrap(),
            Some(t("2025-10-26T00:00:00Z"))
        );
        assert_eq!(
            cph.latest_due(t("2025-10-26T00:00:00Z"), t("2025-10-26T01:30:00Z"))
                .unwrap(),
            None
        );
    }

    #[test]
    fn errors_name_the_bad_input() {
        let cases: [(&str, Option<&str>, &str); 13] = [
            ("", None, "schedule must not be empty"),
            ("   ", None, "schedule must not be empty"),
            (
                "0 0 * * * *",
                None,
                "invalid schedule \"0 0 * * * *\": schedule must have 5 fields (minute hour day-of-month month day-of-week), got 6",
            ),
            ("0 0 0 * * * *", None, "got 7"),
            (
                "garbage",
                None,
                "invalid schedule \"garbage\": schedule must have 5 fields",
            ),
            (
                "61 * * * *",
                None,
                "invalid schedule \"61 * * * *\": minute field \"61\" (allowed 0-59): Number out of bounds",
            ),
            (
                "0 0 * * 8",
                None,
                "day-of-week field \"8\" (allowed 0-7 or SUN-SAT)",
            ),
            (
                "x y z w v",
                None,
                "invalid schedule \"x y z w v\": minute field \"x\" (allowed 0-59): ",
            ),
            (
                "0 0 * MON *",
                None,
                "month field \"MON\": \"MON\" is not a valid name here",
            ),
            (
                "0 0 1,,15 * *",
                None,
                "day-of-month field \"1,,15\": empty item in list",
            ),
            (
                "@reboot",
                None,
                "invalid schedule \"@reboot\": @reboot is not supported",
            ),
            ("0 0 30 2 *", None, "never matches a real date"),
            (
                "CRON_TZ=Europe/Copenhagen 0 2 * * *",
                None,
                "CRON_TZ= and TZ= prefixes are not supported, set spec.timeZone instead",
            ),
        ];
        for (expr, tz, want) in cases {
            let got = err(expr, tz);
            assert!(got.contains(want), "{expr:?}: got {got:?}, want {want:?}");
        }
        assert!(err("@every 1h", None).contains("@every is not supported"));
        assert!(err("@fortnightly", None).contains("unknown descriptor"));
        assert!(err("TZ=UTC 0 2 * * *", None).contains("set spec.timeZone"));
        assert_eq!(
            err("0 2 * * *", Some("Mars/Base")),
            "unknown time zone \"Mars/Base\": use an IANA name such as \"Europe/Copenhagen\" or \"UTC\""
        );
        assert!(err("0 2 * * *", Some("")).contains("unknown time zone \"\""));
    }
    #[test]
    fn longest_gap_covers_irregular_schedules() {
        let gap = |expr: &str| {
            Schedule::parse(expr, None)
                .unwrap()
                .longest_gap(t(START), 30)
                .unwrap()
                .map(|d| d.num_seconds())
        };
        assert_eq!(gap("*/5 * * * *"), Some(300));
        assert_eq!(gap("@daily"), Some(86_400));
        // Weekdays only: Friday 09:00 to Monday 09:00.
        assert_eq!(gap("0 9 * * MON-FRI"), Some(3 * 86_400));
        // 02:00 and 04:00: the long gap is the night-to-night one.
        assert_eq!(gap("0 2,4 * * *"), Some(22 * 3600));
        let one = Schedule::parse("@hourly", None).unwrap();
        assert_eq!(one.longest_gap(t(START), 1).unwrap(), None);
    }
}
