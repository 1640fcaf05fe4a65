//! Budget alerts are delivered at most once per channel (issue 12 point 8), on SQLite (a real file)
//! and DynamoDB (through the real AWS SDK to moto_server): concurrent claimants of one (alert,
//! channel) have exactly one winner; nightly runs started at the same moment send each alert once
//! to the webhook; a failed SNS publish after a delivered webhook is retried on SNS only; and a
//! claim left without its "sent" mark (a run that died) is never re-sent but reported.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Wait;
use common::stores::Kind;
use common::webhook::Webhook;

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use chrono::{DateTime, Utc};
use curflow::store::finance::{AlertChannel, AlertDelivery, DeliveryState};
use curflow_fixtures::Format;
use curflow_reconcile::{Alert, AlertKind, Month};
use rust_decimal::Decimal;

use common::ok;

const NOW: &str = "2026-10-28T03:00:00Z";

fn october() -> Month {
    "2026-10".parse().unwrap()
}

fn curflow(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    common::run_curflow(args, None, env)
}

/// October 2026 processed into the store, with a budget of 0.50 for acct-0001, whose October cost
/// crosses both 80 % and 100 % of it by the 28th: two alerts per night until they are sent.
fn month_with_budget(dir: &Path, store: &Kind) {
    let g = common::generate(&dir.join("bucket"), Format::LegacyParquet, 3_000, 21, |o| o.tenants = 4);
    let location = store.location();
    ok(&curflow(&["process", g.manifest_path.to_str().unwrap(), "--store", &location], &[]));
    ok(&curflow(&["budgets", "set", "--tenant", "acct-0001", "--amount", "0.50", "--store", &location], &[]));
}

/// The `threshold_pct` of each POSTed alert, sorted.
fn thresholds(hook: &Webhook) -> Vec<String> {
    let mut out: Vec<String> = hook
        .bodies()
        .iter()
        .map(|b| serde_json::from_str::<serde_json::Value>(b).unwrap()["threshold_pct"].as_str().unwrap().to_string())
        .collect();
    out.sort_by_key(|t| t.parse::<Decimal>().unwrap());
    out
}

/// A topic on the test server.
fn sns_topic() -> String {
    let runtime = common::rt();
    runtime.block_on(async {
        let config = curflow::aws::sdk_config(&common::aws_settings()).await;
        let sns = aws_sdk_sns::Client::new(&config);
        let t = sns.create_topic().name(common::unique_name("alerts")).send().await.unwrap();
        t.topic_arn().unwrap().to_string()
    })
}

/// An ARN of a topic that does not exist: SNS answers NotFound (the publish certainly failed).
fn missing_topic() -> String {
    format!("arn:aws:sns:us-east-1:123456789012:{}", common::unique_name("missing"))
}

/// (threshold, channel, state) of every delivery record of October, sorted.
fn records(store: &Kind) -> Vec<(String, AlertChannel, DeliveryState)> {
    let deliveries: Vec<AlertDelivery> = store.open().alert_deliveries(october()).wait().unwrap();
    let mut out: Vec<_> = deliveries.iter().map(|d| (d.key.threshold_pct.to_string(), d.channel, d.state)).collect();
    out.sort();
    out
}

fn sent_rows(jsonl: &str) -> usize {
    jsonl.lines().filter(|l| l.contains("\"delivery\":\"sent\"")).count()
}

// ---------------------------------------------------------------------------------------------
// Store level: N claimants, one winner.

fn alert(tenant: &str, threshold: i64) -> Alert {
    Alert {
        accountant_id: tenant.into(),
        month: october(),
        threshold_pct: Decimal::from(threshold),
        kind: AlertKind::Actual,
        budget: Decimal::new(50, 2),
        currency: "USD".into(),
        mtd_actual: Decimal::new(61, 2),
        forecast: None,
        message: format!("{tenant} crossed {threshold} %"),
    }
}

fn at() -> DateTime<Utc> {
    NOW.parse().unwrap()
}

/// `claimants` threads, each with its own store handle, claim the same (alert, webhook) at once:
/// exactly one wins. Then the claim protocol: only the winner marks or releases, a released
/// claim can be won again, a sent record can neither be released nor claimed.
fn exactly_one_claimant_wins(store: &Kind, claimants: usize) {
    // A tenant id with `#` and the reserved-looking `_alert`: records stay apart and read back as such.
    for tenant in ["acct-#1#80", "_alert"] {
        let a = alert(tenant, 80);
        let barrier = Arc::new(Barrier::new(claimants));
        let handles: Vec<_> = (0..claimants)
            .map(|i| {
                let (store, barrier, a) = (store.clone(), Arc::clone(&barrier), a.clone());
                std::thread::spawn(move || {
                    let mut handle = store.open();
                    barrier.wait();
                    handle.claim_alert(&a, AlertChannel::Webhook, &format!("run-{i}"), at()).wait().unwrap()
                })
            })
            .collect();
        let won: Vec<usize> =
            handles.into_iter().enumerate().filter_map(|(i, h)| h.join().unwrap().then_some(i)).collect();
        assert_eq!(won.len(), 1, "{tenant}: winners {won:?}");
        let (winner, loser) = (format!("run-{}", won[0]), format!("run-{}", (won[0] + 1) % claimants));

        let mut s = store.open();
        let key = a.key();
        assert!(!s.mark_alert_sent(&a, AlertChannel::Webhook, &loser, at()).wait().unwrap(), "a loser cannot mark");
        assert!(!s.release_alert(&key, AlertChannel::Webhook, &loser).wait().unwrap(), "a loser cannot release");
        assert!(!s.claim_alert(&a, AlertChannel::Webhook, &loser, at()).wait().unwrap());
        assert!(s.release_alert(&key, AlertChannel::Webhook, &winner).wait().unwrap());
        assert!(s.claim_alert(&a, AlertChannel::Webhook, &loser, at()).wait().unwrap(), "released: claimable again");
        assert!(s.mark_alert_sent(&a, AlertChannel::Webhook, &loser, at()).wait().unwrap());
        assert!(s.mark_alert_sent(&a, AlertChannel::Webhook, &loser, at()).wait().unwrap(), "marking again is a no-op");
        assert!(!s.release_alert(&key, AlertChannel::Webhook, &loser).wait().unwrap(), "a sent record stays");
        assert!(!s.claim_alert(&a, AlertChannel::Webhook, &winner, at()).wait().unwrap());
        // Another channel of the same alert is a record of its own.
        assert!(s.claim_alert(&a, AlertChannel::Sns, &winner, at()).wait().unwrap());
        let mine: Vec<_> = s
            .alert_deliveries(october())
            .wait()
            .unwrap()
            .into_iter()
            .filter(|d| d.key.accountant_id == tenant)
            .map(|d| (d.channel, d.state, d.run_id, d.sent_at.is_some()))
            .collect();
        assert_eq!(
            mine,
            [
                (AlertChannel::Webhook, DeliveryState::Sent, loser.clone(), true),
                (AlertChannel::Sns, DeliveryState::Claimed, winner.clone(), false),
            ],
            "{tenant}"
        );
        assert!(s.alerts_sent(october()).wait().unwrap().contains(&key));
    }
}

#[test]
fn concurrent_claims_of_one_alert_channel_have_exactly_one_winner_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Kind::sqlite(dir.path());
    drop(store.open()); // the file and its schema exist before the race
    exactly_one_claimant_wins(&store, 8);
}

#[test]
fn concurrent_claims_of_one_alert_channel_have_exactly_one_winner_on_dynamodb() {
    exactly_one_claimant_wins(&Kind::dynamo(), 8);
}

// ---------------------------------------------------------------------------------------------
// Nightly runs started at the same moment.

/// Three `curflow nightly` processes started together on one store, webhook and SNS configured,
/// the webhook slow to answer (so every run reaches the alerts while the first delivery is in
/// flight): each alert reaches the webhook once, every run ends 0, and each (alert, channel) has
/// one record, sent. Delivering before recording (curflow before issue 12 point 8) sent each
/// alert once per run.
fn concurrent_nightly_runs_deliver_each_alert_once(store: &Kind) {
    let dir = tempfile::tempdir().unwrap();
    month_with_budget(dir.path(), store);
    let hook = Webhook::slow(Duration::from_millis(1500));
    let url = hook.url.clone();
    let topic = sns_topic();
    let location = store.location();
    let spawn = || {
        common::curflow_command()
            .args(["nightly", "--now", NOW, "--store", &location, "--format", "jsonl"])
            .env("CURFLOW_ALERT_WEBHOOK_URL", &url)
            .env("CURFLOW_ALERT_SNS_TOPIC_ARN", &topic)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let runs: Vec<_> = (0..3).map(|_| spawn()).collect();
    let mut sent = 0;
    for run in runs {
        let out = run.wait_with_output().unwrap();
        sent += sent_rows(&ok(&out));
    }
    assert_eq!(thresholds(&hook), ["80", "100"], "each alert once on the webhook");
    assert!(sent >= 2, "the runs together report both alerts sent: {sent}");
    let all_sent = [
        ("100".to_string(), AlertChannel::Webhook, DeliveryState::Sent),
        ("100".to_string(), AlertChannel::Sns, DeliveryState::Sent),
        ("80".to_string(), AlertChannel::Webhook, DeliveryState::Sent),
        ("80".to_string(), AlertChannel::Sns, DeliveryState::Sent),
    ];
    assert_eq!(records(store), all_sent, "one record per alert and channel, sent");

    // A later run has nothing left to send.
    let env = [("CURFLOW_ALERT_WEBHOOK_URL", url.as_str()), ("CURFLOW_ALERT_SNS_TOPIC_ARN", topic.as_str())];
    let again = ok(&curflow(&["nightly", "--now", NOW, "--store", &location, "--format", "jsonl"], &env));
    assert_eq!(sent_rows(&again), 0, "{again}");
    assert_eq!(hook.posts(), 2);
}

on_both_stores!(concurrent_nightly_runs_deliver_each_alert_once: nightly_runs_started_together_send_each_alert_once_on_sqlite, nightly_runs_started_together_send_each_alert_once_on_dynamodb);

// ---------------------------------------------------------------------------------------------
// One channel fails after another delivered.

/// The webhook takes both alerts, the SNS publish fails (a topic that does not exist): exit 4,
/// the webhook's records are sent and SNS has none. The next run, with a working topic, publishes
/// on SNS only: the webhook still has one POST per alert (before issue 12 point 8 it got both
/// again, the alert being recorded only once every channel had taken it).
fn failed_sns_is_retried_without_the_webhook(store: &Kind) {
    let dir = tempfile::tempdir().unwrap();
    month_with_budget(dir.path(), store);
    let hook = Webhook::start();
    let url = hook.url.clone();
    let location = store.location();
    let nightly = |topic: &str| {
        let env = [("CURFLOW_ALERT_WEBHOOK_URL", url.as_str()), ("CURFLOW_ALERT_SNS_TOPIC_ARN", topic)];
        curflow(&["nightly", "--now", NOW, "--store", &location, "--format", "json"], &env)
    };

    let failed = nightly(&missing_topic());
    assert_eq!(failed.status.code(), Some(4), "a channel that certainly failed: retry (exit 4)");
    let doc: serde_json::Value = serde_json::from_slice(&failed.stdout).unwrap();
    let rows = doc["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{doc}");
    for row in rows {
        assert_eq!(row["delivery"], "failed", "{row}");
        let error = row["error"].as_str().unwrap();
        assert!(error.starts_with("sns: ") && error.contains("delivered on webhook"), "{error}");
    }
    assert_eq!(thresholds(&hook), ["80", "100"]);
    assert_eq!(
        records(store),
        [
            ("100".into(), AlertChannel::Webhook, DeliveryState::Sent),
            ("80".into(), AlertChannel::Webhook, DeliveryState::Sent)
        ]
    );

    let topic = sns_topic();
    let retried = nightly(&topic);
    let out = ok(&retried);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let delivered: Vec<_> = doc["rows"].as_array().unwrap().iter().map(|r| r["delivery"].clone()).collect();
    assert_eq!(delivered, ["sent", "sent"], "{out}");
    assert_eq!(thresholds(&hook), ["80", "100"], "the webhook is not sent again");
    let mut got = records(store);
    got.sort_by_key(|r| (r.0.parse::<Decimal>().unwrap(), r.1));
    assert_eq!(
        got,
        [
            ("80".into(), AlertChannel::Webhook, DeliveryState::Sent),
            ("80".into(), AlertChannel::Sns, DeliveryState::Sent),
            ("100".into(), AlertChannel::Webhook, DeliveryState::Sent),
            ("100".into(), AlertChannel::Sns, DeliveryState::Sent),
        ]
    );
    assert_eq!(
        sent_rows(&ok(&curflow(
            &["nightly", "--now", NOW, "--store", &location, "--format", "jsonl"],
            &[("CURFLOW_ALERT_WEBHOOK_URL", url.as_str()), ("CURFLOW_ALERT_SNS_TOPIC_ARN", topic.as_str())]
        ))),
        0
    );
}

on_both_stores!(failed_sns_is_retried_without_the_webhook: a_failed_sns_publish_is_retried_on_sns_only_on_sqlite, a_failed_sns_publish_is_retried_on_sns_only_on_dynamodb);

// ---------------------------------------------------------------------------------------------
// A claim left behind by a run that died.

/// A claim on (80 %, webhook) without its sent mark, as a run that died between claim and mark
/// leaves it: the nightly run sends only the 100 % alert, ends 0, and lists the claim (tenant,
/// month, threshold, kind, channel, claimed_at, run id) in its summary and JSON.
fn a_stuck_claim_is_reported_not_resent(store: &Kind) {
    let dir = tempfile::tempdir().unwrap();
    month_with_budget(dir.path(), store);
    let claimed_at: DateTime<Utc> = "2026-10-27T03:00:04Z".parse().unwrap();
    assert!(
        store
            .open()
            .claim_alert(&alert("acct-0001", 80), AlertChannel::Webhook, "crashed-run", claimed_at)
            .wait()
            .unwrap()
    );
    let hook = Webhook::start();
    let url = hook.url.clone();
    let location = store.location();
    let env = [("CURFLOW_ALERT_WEBHOOK_URL", url.as_str())];

    let out = ok(&curflow(&["nightly", "--now", NOW, "--store", &location, "--format", "json"], &env));
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(thresholds(&hook), ["100"], "the claimed alert is not sent again");
    let stuck = doc["unconfirmed_deliveries"].as_array().unwrap();
    assert_eq!(stuck.len(), 1, "{doc}");
    assert_eq!(
        stuck[0],
        serde_json::json!({
            "accountant_id": "acct-0001", "month": "2026-10", "threshold_pct": "80", "kind": "actual",
            "channel": "webhook", "claimed_at": "2026-10-27T03:00:04Z", "run_id": "crashed-run", "error": null
        })
    );

    let text = ok(&curflow(&["nightly", "--now", NOW, "--store", &location], &env));
    assert!(
        text.contains(
            "UNCONFIRMED acct-0001 2026-10 80% actual on webhook, claimed 2026-10-27 03:00 UTC by run crashed-run"
        ),
        "{text}"
    );
    assert_eq!(thresholds(&hook), ["100"], "nor on any later run");
    assert_eq!(
        records(store),
        [
            ("100".into(), AlertChannel::Webhook, DeliveryState::Sent),
            ("80".into(), AlertChannel::Webhook, DeliveryState::Claimed)
        ]
    );
}

on_both_stores!(a_stuck_claim_is_reported_not_resent: a_claim_without_sent_mark_is_reported_and_never_resent_on_sqlite, a_claim_without_sent_mark_is_reported_and_never_resent_on_dynamodb);

// ---------------------------------------------------------------------------------------------
// Records of curflow versions before claims.

/// An `alert#` item as curflow wrote it before delivery records (after delivering on every channel
/// it names) reads as sent on each of them: the nightly run sends only what it does not cover, and
/// a tenant id with `#` keeps its own records.
#[test]
fn an_alert_item_from_before_claims_counts_as_sent_on_its_channels_on_dynamodb() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let dir = tempfile::tempdir().unwrap();
    let store = Kind::dynamo();
    month_with_budget(dir.path(), &store);
    let Kind::Dynamo(table) = &store else { unreachable!() };
    let runtime = common::rt();
    let conf = runtime.block_on(curflow::aws::sdk_config(&common::aws_settings()));
    let client = aws_sdk_dynamodb::Client::new(&conf);
    let s = |v: &str| AttributeValue::S(v.into());
    for (tenant, channels) in [("acct-0001", "stdout,webhook"), ("acct-#0001", "stdout,webhook,sns")] {
        let item = [
            ("accountant_id", s("_alert")),
            ("sk", s(&format!("alert#2026-10#{tenant}#80#actual"))),
            ("tenant", s(tenant)),
            ("month_sent", s("2026-10")),
            ("threshold_pct", AttributeValue::N("80".into())),
            ("kind", s("actual")),
            ("sent_at", s("2026-10-26T03:30:00Z")),
            ("channels", s(channels)),
            ("alert", s("{}")),
        ];
        let item = item.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        runtime.block_on(client.put_item().table_name(table).set_item(Some(item)).send()).unwrap();
    }
    let deliveries = store.open().alert_deliveries(october()).wait().unwrap();
    let got: Vec<_> = deliveries
        .iter()
        .map(|d| (d.key.accountant_id.as_str(), d.channel, d.state, d.run_id.as_str(), d.sent_at.is_some()))
        .collect();
    let legacy = curflow::store::finance::LEGACY_RUN_ID;
    assert_eq!(
        got,
        [
            ("acct-#0001", AlertChannel::Webhook, DeliveryState::Sent, legacy, true),
            ("acct-#0001", AlertChannel::Sns, DeliveryState::Sent, legacy, true),
            ("acct-#0001", AlertChannel::Stdout, DeliveryState::Sent, legacy, true),
            ("acct-0001", AlertChannel::Webhook, DeliveryState::Sent, legacy, true),
            ("acct-0001", AlertChannel::Stdout, DeliveryState::Sent, legacy, true),
        ]
    );

    let hook = Webhook::start();
    let url = hook.url.clone();
    let env = [("CURFLOW_ALERT_WEBHOOK_URL", url.as_str())];
    let location = store.location();
    let out = ok(&curflow(&["nightly", "--now", NOW, "--store", &location, "--format", "jsonl"], &env));
    assert_eq!(sent_rows(&out), 1, "{out}");
    assert_eq!(thresholds(&hook), ["100"], "80 % went out before the upgrade");
}

/// The two failure classes of a webhook: a 4xx refusal certainly did not deliver (the claim is
/// released and the next run sends again); a 500 may have (the receiver could have acted before
/// failing), so the claim stays, is reported with its error, and is never sent again.
#[test]
fn a_refused_webhook_is_retried_and_an_uncertain_one_is_never_resent_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Kind::sqlite(dir.path());
    month_with_budget(dir.path(), &store);
    let hook = Webhook::start();
    hook.answer(400);
    let url = hook.url.clone();
    let location = store.location();
    let env = [("CURFLOW_ALERT_WEBHOOK_URL", url.as_str())];
    let nightly = || curflow(&["nightly", "--now", NOW, "--store", &location, "--format", "json"], &env);

    // 400: refused, released, exit 4 (an operator sees it); nothing recorded.
    let out = nightly();
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(hook.posts(), 2);
    assert!(records(&store).is_empty(), "a refused delivery leaves no claim: {:?}", records(&store));

    // 500: uncertain: both claims stay, reported with the error.
    hook.answer(500);
    let out = nightly();
    assert_eq!(hook.posts(), 4);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stuck = doc["unconfirmed_deliveries"].as_array().unwrap();
    assert_eq!(stuck.len(), 2, "{doc}");
    assert!(stuck.iter().all(|s| s["channel"] == "webhook" && s["error"].as_str().is_some_and(|e| e.contains("500"))));
    assert!(records(&store).iter().all(|r| r.2 == DeliveryState::Claimed));

    // The receiver works again: nothing is sent twice.
    hook.answer(200);
    let out = nightly();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(hook.posts(), 4, "an uncertain delivery is never repeated");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["unconfirmed_deliveries"].as_array().unwrap().len(), 2, "still reported");
}
