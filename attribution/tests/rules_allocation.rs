//! Rules routing and allocation of shared lines with evidence from the fixtures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use chrono::NaiveDate;
use curflow_attribution::evidence::ErrorBudget;
use curflow_attribution::evidence::dynamodb::{DynamoAggregator, DynamoConfig};
use curflow_attribution::evidence::lambda::{LambdaAggregator, LambdaConfig};
use curflow_attribution::{
    AllocateError, Allocator, Assignments, Basis, Coverage, DEFAULT_RULES_TOML, DirectCosts, Driver, DriverTotals,
    LineAllocation, MONEY_SCALE, Rules, SharePolicy, SharedLine, TenantId, UnattributedReason, WeightContext,
    default_rules,
};
use rust_decimal::Decimal;

fn fixture(name: &str) -> BufReader<File> {
    BufReader::new(File::open(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap())
}
use curflow_money::testing::d;
fn t(s: &str) -> TenantId {
    TenantId::new(s).unwrap()
}

fn line(
    service: &str,
    usage_type: &str,
    resource: &str,
    item_type: &str,
    day: u32,
    amounts: &[(&str, &str)],
) -> SharedLine {
    SharedLine {
        service: service.into(),
        usage_type: usage_type.into(),
        operation: String::new(),
        resource_id: resource.into(),
        line_item_type: item_type.into(),
        day: NaiveDate::from_ymd_opt(2026, 10, day).unwrap(),
        currency: "USD".into(),
        amounts: amounts.iter().map(|(m, v)| (m.to_string(), d(v))).collect(),
    }
}

/// Evidence of the fixtures: Lambda (GB-s on Oct 3: acct-0001 0.404125, acct-0002 0.334, unknown 0.1) and
/// DynamoDB (WRU on Oct 3: acct-0001 2, acct-0002 4).
fn evidence() -> DriverTotals {
    let mut lambda = LambdaAggregator::new(LambdaConfig::default());
    lambda
        .read(
            "lambda_export.log",
            fixture("lambda_export.log"),
            &ErrorBudget { max_ratio: d("0.2"), ..ErrorBudget::default() },
        )
        .unwrap();
    let (mut totals, _) = lambda.finish().unwrap();
    let mut dynamo = DynamoAggregator::new(DynamoConfig::default());
    dynamo
        .read("dynamodb.log", fixture("dynamodb.log"), &ErrorBudget { max_ratio: d("0.2"), ..ErrorBudget::default() })
        .unwrap();
    totals.merge(&dynamo.finish().unwrap().0).unwrap();
    totals
}

struct Fixture {
    drivers: DriverTotals,
    direct: DirectCosts,
    tenants: BTreeSet<TenantId>,
    rules: Rules,
    assignments: Assignments,
}

impl Fixture {
    fn new() -> Self {
        let direct: DirectCosts =
            [(t("acct-0001"), d("30")), (t("acct-0002"), d("10")), (t("acct-0003"), d("-5"))].into();
        let tenants = direct.keys().cloned().collect();
        let assignments = Assignments::read("assignments.csv", fixture("assignments.csv")).unwrap();
        Self { drivers: evidence(), direct, tenants, rules: default_rules(), assignments }
    }
    fn allocate(&self, l: &SharedLine) -> Result<LineAllocation, AllocateError> {
        let ctx = WeightContext::new(&self.drivers, &self.direct, &self.tenants).unwrap();
        Allocator::new(&self.rules, &self.assignments, ctx, MONEY_SCALE).allocate(l)
    }
}

fn amounts(a: &LineAllocation, measure: &str) -> Vec<(String, String)> {
    let mut v: Vec<_> = a.attributed.iter().map(|r| (r.tenant.to_string(), r.amounts[measure].to_string())).collect();
    if let Some(u) = &a.unattributed {
        v.push(("UNATTRIBUTED".into(), u.amounts[measure].to_string()));
    }
    v
}
fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn default_rules_file_parses_to_the_shipped_defaults() {
    let parsed = Rules::from_toml(DEFAULT_RULES_TOML, "rules/default.toml").unwrap();
    assert_eq!(parsed, default_rules());
    let on_disk =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules/default.toml")).unwrap();
    assert_eq!(Rules::from_toml(&on_disk, "rules/default.toml").unwrap(), parsed);
}

#[test]
fn routing_as_documented() {
    let rules = default_rules();
    let route = |l: &SharedLine| rules.route(l).map(|r| (r.name.as_str(), r.policy.clone()));
    let prop = |driver| SharePolicy::Proportional { driver, window: curflow_attribution::Window::Day };
    assert_eq!(
        route(&line("AWSLambda", "USE1-Lambda-GB-Second", "", "Usage", 3, &[])),
        Some(("lambda-duration", prop(Driver::LambdaGbSeconds)))
    );
    assert_eq!(
        route(&line("AWSLambda", "Lambda-GB-Second-ARM", "", "Usage", 3, &[])),
        Some(("lambda-duration", prop(Driver::LambdaGbSeconds)))
    );
    assert_eq!(
        route(&line("AWSLambda", "USE2-Request-ARM", "", "Usage", 3, &[])),
        Some(("lambda-requests", prop(Driver::LambdaInvocations)))
    );
    assert_eq!(
        route(&line("AmazonDynamoDB", "USE1-WriteRequestUnits", "", "Usage", 3, &[])),
        Some(("dynamodb-writes", prop(Driver::DynamoWriteUnits)))
    );
    assert_eq!(
        route(&line("AmazonDynamoDB", "ReadRequestUnits", "", "Usage", 3, &[])),
        Some(("dynamodb-reads", prop(Driver::DynamoReadUnits)))
    );
    assert_eq!(
        route(&line("AmazonS3", "USE1-TimedStorage-ByteHrs", "", "Usage", 3, &[])),
        Some(("s3-storage", prop(Driver::S3ByteHours)))
    );
    assert_eq!(
        route(&line("AmazonS3", "Requests-Tier1", "", "Usage", 3, &[])),
        Some(("s3-requests-tier1", prop(Driver::S3Tier1Requests)))
    );
    assert_eq!(
        route(&line("AWSLambda", "USE1-Lambda-GB-Second", "", "Tax", 3, &[])),
        Some(("tax-credits-refunds-fees", SharePolicy::WeightedByDirectCost))
    );
    assert_eq!(
        route(&line("AmazonCloudWatch", "USE1-CW:Requests", "", "Usage", 3, &[])),
        Some(("observability-and-keys", SharePolicy::WeightedByDirectCost))
    );
    assert_eq!(
        route(&line("AWSSupportBusiness", "Dollar", "", "Fee", 3, &[])).map(|r| r.1),
        Some(SharePolicy::WeightedByDirectCost)
    );
    assert_eq!(route(&line("AmazonEC2", "BoxUsage:t3.micro", "i-0abc", "Usage", 3, &[])), None);
}

#[test]
fn lambda_gb_seconds_line_splits_by_evidence_and_keeps_unknown_usage_unattributed() {
    let f = Fixture::new();
    let l = line(
        "AWSLambda",
        "USE1-Lambda-GB-Second",
        "arn:aws:lambda:us-east-1:123456789012:function:api",
        "Usage",
        3,
        &[("unblended_cost", "1.234567890123"), ("amortized_cost", "1")],
    );
    let a = f.allocate(&l).unwrap();
    // Weights 0.404125 : 0.334 : 0.1 (GB-s), largest remainder at 1e-12 (values derived independently).
    assert_eq!(
        amounts(&a, "unblended_cost"),
        pairs(&[("acct-0001", "0.595280833523"), ("acct-0002", "0.491985891485"), ("UNATTRIBUTED", "0.147301165115")])
    );
    assert_eq!(
        amounts(&a, "amortized_cost"),
        pairs(&[("acct-0001", "0.482177479493"), ("acct-0002", "0.398508575690"), ("UNATTRIBUTED", "0.119313944817")])
    );
    let r = &a.attributed[0];
    assert_eq!(
        (r.rule.as_str(), r.basis, r.driver),
        ("lambda-duration", Basis::UsageDriver, Some(Driver::LambdaGbSeconds))
    );
    assert_eq!((r.quantity, r.quantity_total, r.share), (d("0.404125"), d("0.838125"), d("0.482177479493")));
    let u = a.unattributed.as_ref().unwrap();
    assert_eq!(
        u.reason,
        UnattributedReason::UsageWithoutTenant { rule: "lambda-duration".into(), driver: Driver::LambdaGbSeconds }
    );
}

#[test]
fn dynamodb_wru_tax_credit_unmatched_no_driver_and_assignment() {
    let f = Fixture::new();
    let wru = f
        .allocate(&line(
            "AmazonDynamoDB",
            "USE1-WriteRequestUnits",
            "arn:aws:dynamodb:us-east-1:123456789012:table/accountants",
            "Usage",
            3,
            &[("unblended_cost", "0.10")],
        ))
        .unwrap();
    assert_eq!(
        amounts(&wru, "unblended_cost"),
        pairs(&[("acct-0001", "0.033333333333"), ("acct-0002", "0.066666666667")])
    );
    assert_eq!(wru.attributed[1].driver, Some(Driver::DynamoWriteUnits));

    // Tax: weighted by direct cost 30 : 10 : (-5 -> 0).
    let tax = f.allocate(&line("AWSLambda", "", "", "Tax", 1, &[("unblended_cost", "4.00")])).unwrap();
    assert_eq!(
        amounts(&tax, "unblended_cost"),
        pairs(&[("acct-0001", "3.000000000000"), ("acct-0002", "1.000000000000")])
    );
    assert_eq!(tax.attributed[0].basis, Basis::DirectCost);

    // A one-unit credit splits like a charge: the unit goes to the larger remainder (acct-0001, 0.75).
    let credit = f.allocate(&line("AWSLambda", "", "", "Credit", 1, &[("unblended_cost", "-0.000000000001")])).unwrap();
    assert_eq!(amounts(&credit, "unblended_cost"), pairs(&[("acct-0001", "-0.000000000001")]));

    let ec2 = f
        .allocate(&line("AmazonEC2", "BoxUsage:t3.micro", "i-0abc", "Usage", 3, &[("unblended_cost", "0.0104")]))
        .unwrap();
    assert!(ec2.attributed.is_empty());
    let u = ec2.unattributed.unwrap();
    assert_eq!((u.reason.code(), u.amounts["unblended_cost"]), ("unmatched", d("0.0104")));

    // No Lambda evidence on Oct 20: the whole line stays unattributed with the reason.
    let none =
        f.allocate(&line("AWSLambda", "USE1-Lambda-GB-Second", "", "Usage", 20, &[("unblended_cost", "2.5")])).unwrap();
    let u = none.unattributed.unwrap();
    assert_eq!(u.reason.code(), "no_driver");
    assert!(
        u.reason.to_string().contains("lambda_gb_seconds") && u.reason.to_string().contains("2026-10-20"),
        "{}",
        u.reason
    );
    assert_eq!(u.amounts["unblended_cost"], d("2.5"));

    // An assigned resource goes wholly to its tenant before any rule.
    let own = f
        .allocate(&line(
            "AWSLambda",
            "USE1-Lambda-GB-Second",
            "arn:aws:lambda:us-east-1:123456789012:function:report-acct-0003",
            "Usage",
            3,
            &[("unblended_cost", "0.7")],
        ))
        .unwrap();
    assert_eq!(amounts(&own, "unblended_cost"), pairs(&[("acct-0003", "0.7")]));
    assert_eq!(
        (own.attributed[0].basis, own.attributed[0].rule.as_str()),
        (Basis::Assignment, "assignment:arn:aws:lambda:us-east-1:123456789012:function:report-acct-0003")
    );

    // An amount finer than the store's scale is refused, not rounded.
    let e = f
        .allocate(&line("AWSLambda", "USE1-Lambda-GB-Second", "", "Usage", 3, &[("unblended_cost", "0.0000000000001")]))
        .unwrap_err();
    assert!(matches!(e, AllocateError::Split { .. }), "{e}");
}

#[test]
fn a_day_of_lines_conserves_every_measure_and_is_deterministic() {
    let f = Fixture::new();
    let mut lines = Vec::new();
    let services = [
        ("AWSLambda", "USE1-Lambda-GB-Second", "Usage"),
        ("AWSLambda", "USE1-Request", "Usage"),
        ("AmazonDynamoDB", "USE1-ReadRequestUnits", "Usage"),
        ("AmazonDynamoDB", "USE1-WriteRequestUnits", "Usage"),
        ("AmazonDynamoDB", "USE1-TimedStorage-ByteHrs", "Usage"),
        ("AmazonS3", "USE1-TimedStorage-ByteHrs", "Usage"),
        ("AmazonEC2", "BoxUsage", "Usage"),
        ("AWSLambda", "", "Tax"),
        ("AWSKMS", "USE1-KMS-Requests", "Usage"),
    ];
    for (i, (s, u, ty)) in services.iter().enumerate() {
        for dd in [3, 4] {
            let x = Decimal::new((i as i64 + 1) * 1_234_567_891 * if *ty == "Tax" { -1 } else { 1 }, 12);
            lines.push(line(
                s,
                u,
                "",
                ty,
                dd,
                &[("unblended_cost", &x.to_string()), ("amortized_cost", &(x / Decimal::TWO).round_dp(12).to_string())],
            ));
        }
    }
    let run = || {
        let mut cov = Coverage::default();
        let mut out = Vec::new();
        for l in &lines {
            let a = f.allocate(l).unwrap();
            cov.add(l, &a).unwrap();
            out.push(a);
        }
        (out, cov)
    };
    let (out, cov) = run();
    let mut totals: BTreeMap<String, Decimal> = BTreeMap::new();
    for a in &out {
        for r in &a.attributed {
            for (m, v) in &r.amounts {
                *totals.entry(m.clone()).or_default() += *v;
            }
        }
        if let Some(u) = &a.unattributed {
            for (m, v) in &u.amounts {
                *totals.entry(m.clone()).or_default() += *v;
            }
        }
    }
    for m in ["unblended_cost", "amortized_cost"] {
        let input: Decimal = lines.iter().map(|l| l.amounts[m]).sum();
        assert_eq!(totals[m], input, "{m}");
        let c = cov.amounts["USD"][m];
        assert_eq!(c.shared, input);
        assert_eq!(c.assigned + c.usage_driver + c.fallback + c.unattributed, input);
        assert!(c.usage_driver > Decimal::ZERO && !c.fallback.is_zero() && c.unattributed > Decimal::ZERO);
    }
    let (again, _) = run();
    assert_eq!(serde_json::to_vec(&out).unwrap(), serde_json::to_vec(&again).unwrap());
}
