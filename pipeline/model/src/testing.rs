//! Cost keys for the workspace's tests, so each test module does not spell out every field of
//! [`CostKey`] (and a new key field is added in one place, not in every test).

use chrono::NaiveDate;

use crate::{CostKey, Name};

/// The account every test key is in, unless a test says otherwise.
pub const TEST_ACCOUNT: &str = "111122223333";

/// A usage line's key on `day`: `tenant` (`None` = the shared pool), `service` and `usage_type`,
/// line-item type `Usage`, in USD, account [`TEST_ACCOUNT`] in `us-east-1`, no unit, operation or
/// resource. Tests change the rest with struct update syntax:
/// `CostKey { usage_unit: "GB-Mo".into(), ..cost_key(day, None, "AmazonS3", "TimedStorage") }`.
pub fn cost_key(day: NaiveDate, tenant: Option<&str>, service: &str, usage_type: &str) -> CostKey {
    CostKey {
        usage_date: day,
        tenant: tenant.map(Name::from),
        service: service.into(),
        usage_type: usage_type.into(),
        usage_unit: "".into(),
        operation: "".into(),
        resource_id: "".into(),
        line_item_type: "Usage".into(),
        currency: "USD".into(),
        account_id: TEST_ACCOUNT.into(),
        account_name: "".into(),
        region: "us-east-1".into(),
        billing: Default::default(),
    }
}
