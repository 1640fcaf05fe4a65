//! Calendar months (`YYYY-MM`), the period of estimates, bills, budgets and exports.
//!
//! A month is a calendar month in UTC, because CUR usage days are UTC days. It is written `YYYY-MM`
//! everywhere (estimates, CSV/JSON columns) and ordered chronologically.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, Days, NaiveDate};
use serde::{Deserialize, Serialize};

const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// A calendar month, `YYYY-MM` (years 1000–9999).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Month {
    first: NaiveDate,
}

/// A text that is not a `YYYY-MM` month.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a YYYY-MM month: {0:?}")]
pub struct MonthError(pub String);

impl Month {
    /// The month `year-month` (`month` 1–12, `year` 1000–9999).
    pub fn new(year: i32, month: u32) -> Option<Self> {
        if !(1000..=9999).contains(&year) {
            return None;
        }
        NaiveDate::from_ymd_opt(year, month, 1).map(|first| Self { first })
    }

    /// The month containing `day`.
    pub fn of(day: NaiveDate) -> Self {
        Self { first: day.with_day0(0).unwrap_or(day) }
    }

    /// The first day.
    pub fn first_day(self) -> NaiveDate {
        self.first
    }

    /// The last day.
    pub fn last_day(self) -> NaiveDate {
        self.next().first.pred_opt().unwrap_or(self.first)
    }

    /// The following month.
    pub fn next(self) -> Self {
        let first = self.first.checked_add_months(chrono::Months::new(1)).unwrap_or(self.first);
        Self { first }
    }

    /// The number of days (28–31).
    pub fn days(self) -> u32 {
        self.last_day().day()
    }

    /// Whether `day` is in this month.
    pub fn contains(self, day: NaiveDate) -> bool {
        Self::of(day) == self
    }

    /// The `n`-th day (1-based), `None` outside the month.
    pub fn day(self, n: u32) -> Option<NaiveDate> {
        if n == 0 || n > self.days() {
            return None;
        }
        self.first.checked_add_days(Days::new(u64::from(n - 1)))
    }

    /// `"October 2026"`: the English month name and the year, as finance exports write it.
    pub fn long_name(self) -> String {
        format!("{} {}", MONTH_NAMES[self.first.month0() as usize], self.first.year())
    }
}

impl FromStr for Month {
    type Err = MonthError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || MonthError(s.to_owned());
        let b = s.as_bytes();
        if b.len() != 7 || b[4] != b'-' || !b.iter().enumerate().all(|(i, c)| i == 4 || c.is_ascii_digit()) {
            return Err(err());
        }
        let year: i32 = s[..4].parse().map_err(|_| err())?;
        let month: u32 = s[5..].parse().map_err(|_| err())?;
        Self::new(year, month).ok_or_else(err)
    }
}

impl TryFrom<String> for Month {
    type Error = MonthError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Month> for String {
    fn from(value: Month) -> Self {
        value.to_string()
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.first.year(), self.first.month())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_walks() {
        let m: Month = "2026-10".parse().unwrap();
        assert_eq!(m.to_string(), "2026-10");
        assert_eq!(m.days(), 31);
        assert_eq!(m.last_day(), NaiveDate::from_ymd_opt(2026, 10, 31).unwrap());
        assert_eq!(m.next().to_string(), "2026-11");
        assert_eq!("2026-12".parse::<Month>().unwrap().next().to_string(), "2027-01");
        assert_eq!("2028-02".parse::<Month>().unwrap().days(), 29);
        assert_eq!(m.long_name(), "October 2026");
        assert_eq!(m.day(31), NaiveDate::from_ymd_opt(2026, 10, 31));
        assert_eq!(m.day(32), None);
        assert!(m.contains(NaiveDate::from_ymd_opt(2026, 10, 1).unwrap()));
        assert!(!m.contains(NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()));
        for bad in ["2026-13", "2026-00", "2026-1", "26-10", "2026/10", "2026-10-01", "+026-10", "２０２６-10"] {
            assert!(bad.parse::<Month>().is_err(), "{bad}");
        }
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, "\"2026-10\"");
        assert_eq!(serde_json::from_str::<Month>(&json).unwrap(), m);
    }
}
