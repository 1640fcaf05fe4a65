//! The HTML report (`curflow report --out report.html`): rendered from a realistic `ReportData`,
//! checked as text, then opened in headless Chromium, which must run the embedded chart library
//! (the page reports `data-charts-ready="4"`) and paint visible charts (screenshot checked: valid
//! PNG, size, not blank, the charts' colours present).
//!
//! Chromium: the binary in `CURFLOW_CHROMIUM`, else `chromium` / `chromium-browser` /
//! `google-chrome` on PATH; `scripts/ensure-chromium` installs Debian's `chromium`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use curflow::report_html::{
    AccountRow, AnomalyRow, BudgetRow, CoverageShares, DailyPoint, ForecastBand, ReportData, TenantBar, VarianceRow,
    render_report,
};
use rust_decimal::Decimal;

const EVIL_TENANT: &str = "acme</script><script>alert(1)</script>";

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, d).unwrap()
}

fn tenant(name: &str, estimated: &str, actual: &str, direct_share: &str, flagged: bool) -> TenantBar {
    let (estimated, actual) = (dec(estimated), dec(actual));
    let direct = (actual * dec(direct_share)).round_dp(2);
    let variance = actual - estimated;
    let variance_pct =
        if estimated.is_zero() { None } else { Some((variance / estimated * Decimal::ONE_HUNDRED).round_dp(2)) };
    TenantBar {
        tenant: name.into(),
        estimated,
        actual,
        direct,
        attributed: actual - direct,
        variance,
        variance_pct,
        flagged,
    }
}

fn budget(name: &str, budget: &str, mtd: &str, forecast: Option<&str>, status: &str) -> BudgetRow {
    let (budget, month_to_date) = (dec(budget), dec(mtd));
    BudgetRow {
        tenant: name.into(),
        budget,
        month_to_date,
        forecast: forecast.map(dec),
        used_pct: (month_to_date / budget * Decimal::ONE_HUNDRED).round_dp(2),
        status: status.into(),
    }
}

/// A realistic month: 7 tenants (two flagged, one with a hostile id), 31 days of account costs,
/// a forecast, 5 budgets (one over 100 %, one above 80 %), coverage shares, anomalies.
#[expect(clippy::too_many_lines, reason = "one scenario, read top to bottom")]
fn sample() -> ReportData {
    let tenants = vec![
        tenant("globex", "18250.00", "19873.41", "0.62", false),
        tenant("initech", "9400.00", "13112.87", "0.48", true),
        tenant("umbrella", "7600.00", "7214.09", "0.71", false),
        tenant("hooli", "5200.00", "5388.55", "0.55", false),
        tenant("stark-industries", "4100.00", "2733.10", "0.40", true),
        tenant(EVIL_TENANT, "1500.00", "1642.33", "0.80", false),
        tenant("wayne-enterprises", "950.00", "1004.70", "0.66", false),
    ];
    let daily: Vec<DailyPoint> = (1..=31)
        .map(|d| {
            // Weekday/weekend shape plus a spike on the 17th.
            let base = if matches!(d % 7, 3 | 4) { dec("1180.25") } else { dec("1612.40") };
            let trend = Decimal::from(d) * dec("6.35");
            let spike = if d == 17 { dec("940.12") } else { Decimal::ZERO };
            let actual = base + trend + spike + Decimal::from(d % 5) * dec("17.03");
            // Most of the account's cost is carried by tenants; the rest stays unattributed.
            DailyPoint { day: day(d), actual, tenants: (actual * dec("0.7")).round_dp(2) }
        })
        .collect();
    let total: Decimal = daily.iter().map(|p| p.tenants).sum();
    ReportData {
        period: "2026-10".into(),
        period_state: "provisional".into(),
        generated_at: "2026-11-02T06:15:00Z".into(),
        currency: "USD".into(),
        other_currencies: Vec::new(),
        tenants,
        top_variances: vec![
            VarianceRow {
                tenant: "initech".into(),
                resource_type: "ec2:instance".into(),
                estimated: dec("5200.00"),
                actual: dec("8100.45"),
                variance: dec("2900.45"),
                variance_pct: Some(dec("55.78")),
                dominant: "BoxUsage:m7g.2xlarge".into(),
                suggested_unit_cost: Some(dec("0.4181")),
                flagged: true,
            },
            VarianceRow {
                tenant: "stark-industries".into(),
                resource_type: "rds:db".into(),
                estimated: dec("3000.00"),
                actual: dec("1633.10"),
                variance: dec("-1366.90"),
                variance_pct: Some(dec("-45.56")),
                dominant: "InstanceUsage:db.r6g.large".into(),
                suggested_unit_cost: Some(dec("0.1371")),
                flagged: true,
            },
            VarianceRow {
                tenant: "globex".into(),
                resource_type: "s3:bucket".into(),
                estimated: dec("2100.00"),
                actual: dec("3320.18"),
                variance: dec("1220.18"),
                variance_pct: Some(dec("58.10")),
                dominant: "TimedStorage-ByteHrs".into(),
                suggested_unit_cost: Some(dec("0.0231")),
                flagged: false,
            },
            VarianceRow {
                tenant: EVIL_TENANT.into(),
                resource_type: "lambda:function".into(),
                estimated: dec("0"),
                actual: dec("142.33"),
                variance: dec("142.33"),
                variance_pct: None,
                dominant: "Request<&>\"quoted\"".into(),
                suggested_unit_cost: None,
                flagged: false,
            },
        ],
        daily,
        forecast: Some(ForecastBand {
            month_to_date: total,
            month_end: total.round_dp(2),
            low: (total * dec("0.985")).round_dp(2),
            high: (total * dec("1.02")).round_dp(2),
            // The method text `curflow report` writes: long, so it must not end up in a legend.
            method: "sum over tenants of: month-to-date + remaining days × median of the last 7 days \
                     (interval ± 2 robust standard deviations)"
                .into(),
        }),
        budgets: vec![
            budget("globex", "25000", "19873.41", Some("19873.41"), "ok"),
            budget("initech", "12000", "13112.87", Some("13112.87"), "over"),
            budget("umbrella", "8500", "7214.09", Some("7214.09"), "warning"),
            budget("hooli", "9000", "5388.55", None, "ok"),
            budget(EVIL_TENANT, "2000", "1642.33", Some("1642.33"), "warning"),
        ],
        coverage: CoverageShares {
            tagged_pct: dec("61.40"),
            usage_driver_pct: dec("24.85"),
            fallback_pct: dec("9.15"),
            unattributed_pct: dec("4.60"),
        },
        anomalies: vec![
            AnomalyRow {
                tenant: "initech".into(),
                service: "AmazonEC2".into(),
                day: day(17),
                cost: dec("1240.12"),
                baseline: dec("300.00"),
                jump_pct: Some(dec("313.37")),
            },
            AnomalyRow {
                tenant: EVIL_TENANT.into(),
                service: "<img src=x onerror=alert(2)>".into(),
                day: day(23),
                cost: dec("88.10"),
                baseline: dec("40.05"),
                jump_pct: Some(dec("119.98")),
            },
        ],
        // Two linked accounts: the per-account table, with an escaped hostile id.
        accounts: vec![
            AccountRow {
                account_id: "111122223333".into(),
                account_name: "production".into(),
                amortized: dec("41230.55"),
                tenants: dec("30100.00"),
                unattributed: dec("11130.55"),
            },
            AccountRow {
                account_id: EVIL_TENANT.into(),
                account_name: EVIL_TENANT.into(),
                amortized: dec("1200.00"),
                tenants: dec("1200.00"),
                unattributed: Decimal::ZERO,
            },
        ],
        missing_evidence: Vec::new(),
        aws_forecasts: Vec::new(),
    }
}

fn empty() -> ReportData {
    ReportData {
        period: "2026-11".into(),
        period_state: "open".into(),
        generated_at: "2026-11-01T00:05:00Z".into(),
        currency: "USD".into(),
        ..ReportData::default()
    }
}

// --- HTML text checks ----------------------------------------------------------------------------

fn write_report(dir: &Path, name: &str, data: &ReportData) -> (PathBuf, String) {
    let html = render_report(data).unwrap();
    let path = dir.join(name);
    fs::write(&path, &html).unwrap();
    (path, html)
}

/// The chart library's own header comment names its web site; no element may load anything.
fn assert_no_network(html: &str) {
    let lower = html.to_ascii_lowercase();
    for needle in [
        "src=\"http",
        "src='http",
        "src=http",
        "href=\"http",
        "<link",
        "@import",
        "url(http",
        "url(//",
        "url(\"http",
        "url('http",
        "<iframe",
        "//cdn",
    ] {
        assert!(!lower.contains(needle), "the report must not load anything from the network, found {needle:?}");
    }
    // Every <script> tag is inline.
    for tag in lower.match_indices("<script").map(|(i, _)| &lower[i..i + lower[i..].find('>').unwrap()]) {
        assert!(!tag.contains("src"), "external script: {tag}");
    }
}

#[test]
fn report_html_is_self_contained_and_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let (_, html) = write_report(dir.path(), "report.html", &sample());

    // Size: the inlined library (~210 KB) plus data, tables, CSS and script.
    assert!(html.len() > 215_000, "report suspiciously small: {} bytes", html.len());
    assert!(html.len() < 400_000, "report suspiciously large: {} bytes", html.len());
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("Chart.js v4.6.1"), "chart library not inlined");

    for id in ["chart-tenants", "chart-daily", "chart-budgets", "chart-coverage"] {
        assert_eq!(html.matches(&format!("<canvas id=\"{id}\"")).count(), 1, "canvas {id}");
    }
    assert!(html.contains("<script type=\"application/json\" id=\"curflow-data\">"));
    assert!(html.contains("data-charts-expected=\"4\""));
    assert_no_network(&html);

    // Exactly the four inline scripts: data, derived view, library, app. The hostile tenant id
    // must not have opened a fifth.
    assert_eq!(html.matches("<script").count(), 4, "unexpected <script> tags");
    assert_eq!(html.matches("</script>").count(), 4);
    assert!(!html.contains(EVIL_TENANT), "tenant id emitted unescaped");
    assert!(!html.contains("<img"), "service name emitted unescaped");
    assert!(html.contains("acme&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"), "escaped tenant in tables");
    assert!(
        html.contains(r#"acme\u003c/script\u003e\u003cscript\u003ealert(1)\u003c/script\u003e"#),
        "escaped in JSON"
    );
    assert!(html.contains("Request&lt;&amp;&gt;&quot;quoted&quot;"));

    // The JSON block parses back, amounts are exact decimal strings.
    let start = html.find("id=\"curflow-data\">").unwrap() + "id=\"curflow-data\">".len();
    let end = start + html[start..].find("</script>").unwrap();
    let json: serde_json::Value = serde_json::from_str(&html[start..end]).unwrap();
    assert_eq!(json["period"], "2026-10");
    assert_eq!(json["tenants"][1]["actual"], "13112.87");
    assert_eq!(json["tenants"][5]["tenant"], EVIL_TENANT);
    assert_eq!(json["daily"].as_array().unwrap().len(), 31);
    assert_eq!(json["daily"][0]["day"], "2026-10-01");
    assert_eq!(json["top_variances"][0]["suggested_unit_cost"], "0.4181");
    assert_eq!(json["coverage"]["tagged_pct"], "61.40");

    // Header, banner, tables with rounded, grouped amounts.
    assert!(html.contains("id=\"provisional-banner\""), "banner for a non-final period");
    assert!(html.contains("Open period &mdash; provisional numbers"));
    assert!(html.contains("2026-11-02T06:15:00Z"));
    assert!(html.contains(">13,112.87<"), "grouped amount");
    assert!(html.contains(">0.4181<"), "suggested unit cost");
    assert!(html.contains("status-over"), "a budget over 100 %");
    assert!(html.contains(">109.3&nbsp;%<"), "initech's budget used");
    assert!(
        html.contains("id=\"top-variances\"") && html.contains("id=\"anomalies\"") && html.contains("id=\"budgets\"")
    );

    // Summary cards: the tenants' cost to date, estimate and forecast side by side, labelled as
    // the tenants'; the account total (which includes cost no tenant carries) separately, saying so.
    let cards = &html[html.find("id=\"summary\"").unwrap()..];
    let cards = &cards[..cards.find("</section>").unwrap()];
    let order: Vec<usize> =
        ["card-tenants-cost", "card-tenants-estimate", "card-tenants-forecast", "card-account-cost"]
            .iter()
            .map(|id| cards.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("card {id} missing")))
            .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "cards out of order: {order:?}");
    assert!(cards.contains(">Tenants&rsquo; cost to date<"));
    assert!(cards.contains(">Tenants&rsquo; forecast month end<"));
    assert!(cards.contains(">Account cost to date, all<"));
    assert!(!cards.contains(">Forecast month end<"), "an unqualified forecast label is back");
    // In the sample, tenants carry about 70 % of the daily account cost; the rest no tenant carries.
    let tenants_cost: Decimal = sample().tenants.iter().map(|t| t.actual).sum();
    assert!(cards.contains(&format!(">{}<", curflow::report_html::money(tenants_cost))), "tenants' cost card value");
    assert!(cards.contains("+ no tenant"), "account card names the part no tenant carries");
    // The long forecast method is explained in the panel note, never used as a legend label.
    assert!(html.contains("from their cost to date"));
    let view_start = html.find("id=\"curflow-view\">").unwrap() + "id=\"curflow-view\">".len();
    let view_end = view_start + html[view_start..].find("</script>").unwrap();
    let view: serde_json::Value = serde_json::from_str(&html[view_start..view_end]).unwrap();
    assert_eq!(view["cumulative_tenants"].as_array().unwrap().len(), 31);

    // Flagged resource-type variances are marked in the top-variances table.
    let top = &html[html.find("id=\"top-variances\"").unwrap()..];
    let top = &top[..top.find("</section>").unwrap()];
    assert_eq!(top.matches("<span class=\"flag\">flagged</span>").count(), 2, "flag marks in top variances");

    // A final period has no banner.
    let mut fin = sample();
    fin.period_state = "final".into();
    let fin_html = render_report(&fin).unwrap();
    assert!(!fin_html.contains("id=\"provisional-banner\""));
}

#[test]
fn empty_report_shows_no_data_notes() {
    let dir = tempfile::tempdir().unwrap();
    let (path, html) = write_report(dir.path(), "empty.html", &empty());
    assert!(!html.contains("<canvas"), "no chart without data");
    for id in ["chart-tenants", "chart-daily", "chart-budgets", "chart-coverage"] {
        assert!(html.contains(&format!("id=\"{id}-empty\"")), "no-data note for {id}");
    }
    assert!(html.contains("No tenant costs for this period yet."));
    assert!(html.contains("No daily costs for this period yet."));
    assert!(html.contains("data-charts-expected=\"0\""));
    assert!(html.contains("id=\"provisional-banner\""));
    assert_no_network(&html);

    // The page's script still runs to the end in a browser.
    let chromium = chromium();
    let dom = dump_dom(&chromium, &path, dir.path());
    assert!(dom.contains("data-charts-ready=\"0\""), "script did not finish on an empty report");
    assert!(dom.contains("No daily costs for this period yet."));
}

// --- headless Chromium ---------------------------------------------------------------------------

fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CURFLOW_CHROMIUM").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "CURFLOW_CHROMIUM={} does not exist", p.display());
        return p;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "no headless Chromium found (set CURFLOW_CHROMIUM or put chromium on PATH): run ./scripts/test, which \
         installs it, or ./scripts/ensure-chromium"
    );
}

/// Runs Chromium headless on `page` with `extra` arguments, its own profile directory, stdout to
/// a file; kills it after 90 s. Returns stdout.
fn run_chromium(chromium: &Path, page: &Path, extra: &[String], work: &Path, tag: &str) -> String {
    let profile = work.join(format!("profile-{tag}"));
    let out_path = work.join(format!("chromium-{tag}.out"));
    let err_path = work.join(format!("chromium-{tag}.err"));
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let mut child = Command::new(chromium)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--window-size=1280,2400",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium.display()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(90) {
            child.kill().ok();
            child.wait().ok();
            panic!(
                "chromium ({tag}) did not finish in 90 s; stderr:\n{}",
                fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = fs::read_to_string(&err_path).unwrap_or_default();
    assert!(status.success(), "chromium ({tag}) failed: {status}\nstderr:\n{stderr}");
    fs::read_to_string(&out_path).unwrap()
}

fn dump_dom(chromium: &Path, page: &Path, work: &Path) -> String {
    let tag = format!("dom-{}", page.file_stem().unwrap().to_string_lossy());
    run_chromium(chromium, page, &["--dump-dom".to_string()], work, &tag)
}

fn screenshot(chromium: &Path, page: &Path, png: &Path, work: &Path) -> Vec<u8> {
    let tag = format!("shot-{}", page.file_stem().unwrap().to_string_lossy());
    run_chromium(chromium, page, &[format!("--screenshot={}", png.display())], work, &tag);
    fs::read(png).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", png.display()))
}

/// Decoded 8-bit RGB(A) image.
struct Image {
    width: usize,
    height: usize,
    /// RGB triples, row-major.
    rgb: Vec<[u8; 3]>,
}

/// Minimal PNG decoder for what Chromium writes: 8-bit RGB or RGBA, not interlaced. Alpha is
/// composited over white.
fn decode_png(bytes: &[u8]) -> Image {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let (mut pos, mut idat, mut header) = (8, Vec::new(), None);
    while pos + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = &bytes[pos + 4..pos + 8];
        let body = &bytes[pos + 8..pos + 8 + len];
        match kind {
            b"IHDR" => header = Some(body.to_vec()),
            b"IDAT" => idat.extend_from_slice(body),
            b"IEND" => break,
            _ => {}
        }
        pos += 12 + len;
    }
    let header = header.expect("PNG without IHDR");
    let width = u32::from_be_bytes(header[0..4].try_into().unwrap()) as usize;
    let height = u32::from_be_bytes(header[4..8].try_into().unwrap()) as usize;
    let (depth, color, interlace) = (header[8], header[9], header[12]);
    assert_eq!((depth, interlace), (8, 0), "unsupported PNG (bit depth {depth}, interlace {interlace})");
    let channels = match color {
        2 => 3,
        6 => 4,
        other => panic!("unsupported PNG colour type {other}"),
    };
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..]).read_to_end(&mut raw).unwrap();
    let stride = width * channels;
    assert_eq!(raw.len(), height * (stride + 1), "PNG data length");
    let mut pixels = vec![0u8; height * stride];
    for y in 0..height {
        let filter = raw[y * (stride + 1)];
        let line = &raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)];
        for x in 0..stride {
            let a = if x >= channels { pixels[y * stride + x - channels] as i32 } else { 0 };
            let b = if y > 0 { pixels[(y - 1) * stride + x] as i32 } else { 0 };
            let c = if y > 0 && x >= channels { pixels[(y - 1) * stride + x - channels] as i32 } else { 0 };
            let predictor = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => (a + b) / 2,
                4 => {
                    let p = a + b - c;
                    let (pa, pb, pc) = ((p - a).abs(), (p - b).abs(), (p - c).abs());
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                f => panic!("bad PNG filter {f}"),
            };
            pixels[y * stride + x] = (line[x] as i32 + predictor) as u8;
        }
    }
    let rgb = pixels
        .chunks_exact(channels)
        .map(|p| {
            if channels == 3 {
                [p[0], p[1], p[2]]
            } else {
                let alpha = p[3] as u32;
                let over_white = |v: u8| ((v as u32 * alpha + 255 * (255 - alpha)) / 255) as u8;
                [over_white(p[0]), over_white(p[1]), over_white(p[2])]
            }
        })
        .collect();
    Image { width, height, rgb }
}

fn hex(color: &str) -> [u8; 3] {
    let v = u32::from_str_radix(color.trim_start_matches('#'), 16).unwrap();
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

fn count_near(img: &Image, color: [u8; 3], tolerance: i32) -> usize {
    img.rgb.iter().filter(|p| (0..3).all(|i| (p[i] as i32 - color[i] as i32).abs() <= tolerance)).count()
}

/// Where a person (or CI log reader) can look at the screenshot after the test.
fn keep_copy(png: &Path, html: &Path) -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::current_exe().ok()?.ancestors().nth(3).map(Path::to_path_buf))?;
    fs::create_dir_all(&target).ok()?;
    let shot = target.join("report-screenshot.png");
    fs::copy(png, &shot).ok()?;
    fs::copy(html, target.join("report-screenshot.html")).ok()?;
    Some(shot)
}

#[test]
fn report_renders_in_headless_chromium_with_visible_charts() {
    let chromium = chromium();
    let dir = tempfile::tempdir().unwrap();
    let (page, _) = write_report(dir.path(), "report.html", &sample());

    // 1. The library ran and drew all four charts.
    let dom = dump_dom(&chromium, &page, dir.path());
    let body_tag = &dom[dom.find("<body").expect("no <body> in dumped DOM")..];
    let body_tag = &body_tag[..body_tag.find('>').unwrap()];
    assert!(body_tag.contains("data-charts-ready=\"4\""), "charts not drawn; body tag: {body_tag}");
    assert!(!dom.contains("class=\"no-data\""), "a chart was replaced by a note");
    for id in ["chart-tenants", "chart-daily", "chart-budgets", "chart-coverage"] {
        let at = dom.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("canvas {id} missing from DOM"));
        let tag_start = dom[..at].rfind('<').unwrap();
        let tag = &dom[tag_start..tag_start + dom[tag_start..].find('>').unwrap()];
        // Chart.js sizes the canvas it drew on (style="... width: Npx; height: Npx").
        assert!(tag.starts_with("<canvas") && tag.contains("height:"), "canvas {id} not laid out by Chart.js: {tag}");
    }
    // Every legend lies inside its chart (the page measures Chart.js's legend boxes against the
    // canvas; a long label used to run past the daily-trend chart's right edge).
    assert!(body_tag.contains("data-legend-overflow=\"\""), "a legend runs outside its chart; body tag: {body_tag}");
    assert_eq!(dom.matches("<script").count(), 4, "the hostile tenant id injected a script");
    assert!(dom.contains("acme&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));

    // 2. Screenshot of the report and, for scale, of a blank page of the same size.
    let png_path = dir.path().join("report.png");
    let png = screenshot(&chromium, &page, &png_path, dir.path());
    let blank_page = dir.path().join("blank.html");
    fs::write(&blank_page, "<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body></body></html>").unwrap();
    let blank = screenshot(&chromium, &blank_page, &dir.path().join("blank.png"), dir.path());

    let kept = keep_copy(&png_path, &page);
    println!(
        "report.html: {} bytes; screenshot: {} ({} bytes; blank page {} bytes){}",
        fs::metadata(&page).unwrap().len(),
        png_path.display(),
        png.len(),
        blank.len(),
        kept.map(|p| format!("; copy kept at {}", p.display())).unwrap_or_default()
    );

    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "screenshot is not a PNG");
    assert!(png.len() > 30_000, "screenshot too small to hold charts: {} bytes", png.len());
    assert!(
        png.len() > 3 * blank.len(),
        "screenshot ({} B) barely larger than a blank page ({} B)",
        png.len(),
        blank.len()
    );

    // 3. Pixels: the page is not blank and each chart's colours are painted.
    let img = decode_png(&png);
    assert_eq!((img.width, img.height), (1280, 2400), "screenshot size");
    let non_white = img.rgb.iter().filter(|p| p.iter().any(|c| *c < 235)).count();
    assert!(non_white > img.rgb.len() / 50, "page looks blank: {non_white} non-white pixels");
    let checks = [
        ("tenants: actual bars", "#2563eb", 2_000),
        ("tenants: flagged bars", "#dc2626", 1_000),
        ("tenants: estimate bars", "#94a3b8", 2_000),
        ("daily: daily line", "#0d9488", 300),
        ("daily: running total", "#7c3aed", 300),
        ("daily: tenants' total", "#db2777", 300),
        ("budgets: under 80 %", "#16a34a", 1_000),
        ("budgets: over 100 %", "#b91c1c", 1_000),
        ("budgets: 80-100 %", "#f59e0b", 1_000),
        ("coverage: tagged", "#0891b2", 3_000),
        ("coverage: usage driver", "#4f46e5", 1_000),
        ("coverage: fallback", "#eab308", 300),
    ];
    let mut missing = Vec::new();
    for (what, color, min) in checks {
        let n = count_near(&img, hex(color), 6);
        println!("  {what:<24} {color}: {n} px");
        if n < min {
            missing.push(format!("{what} ({color}): {n} px < {min}"));
        }
    }
    assert!(missing.is_empty(), "chart colours missing from the screenshot: {missing:?}");
}
