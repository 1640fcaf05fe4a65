//! Replacing a period from lines handed over as they are made ([`LineChunks`]), holding none of
//! them: what `curflow process` (CLI, Lambda, backfill) and `curflow attribute` write through.
//!
//! The protocol is the module's (*Replacing a period*), with two differences forced by a source
//! that is read once:
//!
//! - **The read-back check cannot compare an item with "its" input line**, which is gone. While
//!   the items are sent, each partition's count, exact totals and an order-free digest (the
//!   wrapping sum of a 128-bit hash of each line with its index) are kept; the read-back computes
//!   the same from the items and they must agree, partition by partition. Each item's sort key
//!   must also be the one its own content and index give, in its own partition, with an index
//!   below the count written: an item altered, lost, duplicated or moved is caught (a digest
//!   collision aside: 2^-128). Memory: one tally per tenant, not per line.
//! - **A lost pointer race cannot be rewritten.** When the switch fails because another run
//!   switched the period meanwhile, the store decides again against that run's version: the same
//!   version or a newer one settles it (`Unchanged`, `RefusedOlder`); an older one would need our
//!   lines again, so the run deletes its items and fails with [`Error::Superseded`] (retryable;
//!   the processor reads the delivery once more by itself).
//!
//! A run's own items are deleted (on any failure) by listing each partition it wrote under its
//! version prefix, so an item whose index was altered on the way is deleted too.

use std::collections::BTreeMap;
use std::path::PathBuf;

use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

use super::item::{
    NO_BASE, POOL_PARTITION, Pointer, Stamp, index_of_sk, key_of, line_item, line_sk, partition_of, pool_item,
    version_prefix,
};
use super::{DynamoStore, Fault, MAX_PARTITION_BYTES, READS_IN_FLIGHT, Switch, new_version_tag, put_request};
use crate::error::{Error, Result};
use crate::{CostStore, LineChunks, MadeFrom, PeriodRecord, ReplaceOutcome, decide};
use curflow_model::Names;
use curflow_model::aggregate::{Amounts, CostLine};
use curflow_model::period::BillingPeriod;
use rust_decimal::Decimal;

/// What went into (or came back from) one partition: enough to check a read-back without the
/// lines.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Tally {
    count: u64,
    total: Amounts,
    /// Wrapping sum of [`digest`] over the partition's (index, line) pairs: independent of order.
    digest: u128,
}

impl Tally {
    fn add(&mut self, index: usize, line: &CostLine) -> Result<()> {
        self.count += 1;
        self.total.add(&line.amounts)?;
        self.digest = self.digest.wrapping_add(digest(index, line));
        Ok(())
    }
}

/// A line's content with its index, hashed: 128 bits of the SHA-256 of a canonical text (every
/// field, decimals normalized, since an item's numbers read back with the scale DynamoDB keeps).
fn digest(index: usize, line: &CostLine) -> u128 {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update(bytes);
        h.update([0]);
    };
    let dec = |d: Decimal| d.normalize().to_string();
    field(index.to_string().as_bytes());
    field(line.period.to_string().as_bytes());
    field(format!("{:?}", line.key).as_bytes());
    let a = &line.amounts;
    for d in [
        a.unblended_cost,
        a.net_unblended_cost,
        a.amortized_cost,
        a.ri_sp_trueup,
        a.ri_sp_upfront_fees,
        a.usage_amount,
        a.pricing_quantity,
        a.list_cost,
        a.contracted_cost,
    ] {
        field(dec(d).as_bytes());
    }
    field(a.line_items.to_string().as_bytes());
    match line.attribution.as_deref() {
        None => field(b"-"),
        Some(at) => {
            field(at.rule.as_bytes());
            field(at.basis.as_bytes());
            field(at.driver.as_deref().unwrap_or("-").as_bytes());
            for d in [at.quantity, at.quantity_total, at.share] {
                field(dec(d).as_bytes());
            }
        }
    }
    field(line.unattributed_reason.as_deref().unwrap_or("-").as_bytes());
    let bytes = h.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&bytes[..16]);
    u128::from_le_bytes(first)
}

/// The tallies of what one run wrote, per partition, and how many lines and pool lines.
#[derive(Default)]
struct Written {
    partitions: BTreeMap<String, Tally>,
    partition_bytes: usize,
    lines: usize,
    pool: usize,
}

impl Written {
    /// The partitions readers query (the pool's apart).
    fn line_partitions(&self) -> Vec<String> {
        self.partitions.keys().filter(|p| *p != POOL_PARTITION).cloned().collect()
    }
}

impl DynamoStore {
    /// [`crate::CostStore::replace_split_period_chunks`] of this store (see the module docs).
    pub(super) async fn replace_chunks_async(
        &self,
        record: &PeriodRecord,
        chunks: &mut dyn LineChunks,
        force: bool,
    ) -> Result<ReplaceOutcome> {
        let period = record.period;
        let stored = self.get_pointer(period).await?;
        let outcome = decide(stored.as_ref().map(|p| MadeFrom::record(&p.record)), MadeFrom::record(record), force);
        if !matches!(outcome, ReplaceOutcome::Replaced { .. }) {
            return Ok(outcome);
        }
        let stamp = Stamp {
            tag: new_version_tag(&record.version),
            base: stored.as_ref().map_or_else(|| NO_BASE.to_string(), |p| p.tag.clone()),
            version: record.version.clone(),
        };
        let mut written = Written::default();
        let wrote = self.write_chunks(period, chunks, &stamp, &mut written).await;
        let checked = match wrote {
            Ok(()) => self.verify_tallies(period, &stamp, &written).await,
            Err(e) => Err(e),
        };
        let mismatch = match checked {
            Ok(Ok(())) => None,
            Ok(Err(mismatch)) => Some(mismatch),
            Err(e) => {
                self.discard_written(period, &stamp, &written, "write failed").await;
                return Err(e);
            }
        };
        if let Some(mismatch) = mismatch {
            self.discard_written(period, &stamp, &written, "verification failed").await;
            return Err(Error::Internal(format!("{mismatch}; the pointer was not switched")));
        }
        self.inject(Fault::StopBeforeSwitch, || {
            format!("injected fault: stopped before switching period {period} to version {}", stamp.tag)
        })?;
        if let Some(hook) = &self.before_switch {
            hook();
        }
        let pointer = Pointer {
            record: record.clone(),
            tag: stamp.tag.clone(),
            partitions: written.line_partitions(),
            line_count: written.lines as u64,
            pool_count: written.pool as u64,
        };
        if let Switch::ConditionFailed = self.switch(&pointer, &stamp.base).await? {
            let now = self.get_pointer(period).await?;
            // A retried PutItem whose first attempt landed fails its own condition.
            if now.as_ref().map(|p| &p.tag) != Some(&stamp.tag) {
                self.discard_written(period, &stamp, &written, "lost the pointer switch").await;
                let again = decide(now.as_ref().map(|p| MadeFrom::record(&p.record)), MadeFrom::record(record), force);
                if matches!(again, ReplaceOutcome::Replaced { .. }) {
                    return Err(Error::Superseded { store: self.describe(), period: period.to_string() });
                }
                return Ok(again);
            }
        }
        self.inject(Fault::StopBeforeCleanup, || {
            format!("injected fault: stopped after switching period {period} to version {}, before cleanup", stamp.tag)
        })?;
        if let Err(e) = self.cleanup(period, &stamp.tag).await {
            tracing::warn!(table = %self.table, %period, error = %e, "old versions not removed; readers follow the pointer, the next run removes them");
        }
        Ok(ReplaceOutcome::Replaced { previous: stored.map(|p| p.record.version) })
    }

    /// Sends every chunk's items, then the pool's, tallying each partition as its items are made.
    async fn write_chunks(
        &self,
        period: BillingPeriod,
        chunks: &mut dyn LineChunks,
        stamp: &Stamp,
        written: &mut Written,
    ) -> Result<()> {
        let store = self.describe();
        while let Some(chunk) = chunks.next_chunk()? {
            let first = written.lines;
            written.lines += chunk.len();
            let items = chunk.iter().enumerate().map(|(i, line)| {
                let n = first + i;
                let tally = written_partition(&store, written, &partition_of(line))?;
                self.tally(period, tally, n, line)?;
                put_request(line_item(line, n, stamp))
            });
            self.write_each(items).await?;
        }
        let pool = chunks.pool()?;
        written.pool = pool.len();
        if pool.is_empty() {
            return Ok(());
        }
        let items = pool.iter().enumerate().map(|(n, line)| {
            let tally = written.partitions.entry(POOL_PARTITION.to_string()).or_default();
            self.tally(period, tally, n, line)?;
            put_request(pool_item(line, n, stamp))
        });
        self.write_each(items).await
    }

    /// Adds `line` (index `n`) to `tally`, refusing a line of another period.
    fn tally(&self, period: BillingPeriod, tally: &mut Tally, n: usize, line: &CostLine) -> Result<()> {
        if line.period != period {
            return Err(Error::Internal(format!("line of {} written into period {period}", line.period)));
        }
        tally.add(n, line)
    }

    /// Reads every written partition back (consistently) and compares its tally with what was
    /// written there. `Ok(Err(reason))` on a mismatch.
    async fn verify_tallies(
        &self,
        period: BillingPeriod,
        stamp: &Stamp,
        written: &Written,
    ) -> Result<std::result::Result<(), String>> {
        let prefix = version_prefix(period, &stamp.tag);
        let partitions: Vec<(String, usize)> = written
            .partitions
            .keys()
            .map(|p| (p.clone(), if p == POOL_PARTITION { written.pool } else { written.lines }))
            .collect();
        let read: Vec<(String, std::result::Result<Tally, String>)> = futures::stream::iter(partitions)
            .map(|(partition, count)| self.read_tally(period, stamp, partition, &prefix, count))
            .buffer_unordered(READS_IN_FLIGHT)
            .try_collect()
            .await?;
        for (partition, tally) in read {
            let tally = match tally {
                Ok(tally) => tally,
                Err(reason) => return Ok(Err(reason)),
            };
            let want = &written.partitions[&partition];
            if tally != *want {
                return Ok(Err(format!(
                    "period {period}: the items of partition {partition} do not read back as the lines written there \
                     ({} items, {:?}, digest {:032x} vs {} lines, {:?}, digest {:032x})",
                    tally.count, tally.total, tally.digest, want.count, want.total, want.digest
                )));
            }
        }
        Ok(Ok(()))
    }

    /// The tally of one partition's items of version `stamp`, each checked to sit under the sort
    /// key its content and index give (`Err(reason)` naming the first that does not).
    async fn read_tally(
        &self,
        period: BillingPeriod,
        stamp: &Stamp,
        partition: String,
        prefix: &str,
        count: usize,
    ) -> Result<(String, std::result::Result<Tally, String>)> {
        let pool = partition == POOL_PARTITION;
        let mut names = Names::default();
        let (mut tally, mut mismatch) = (Tally::default(), None);
        self.query_pages(self.partition_query(&partition, prefix), |page| {
            for item in &page {
                if mismatch.is_some() {
                    return Ok(());
                }
                let line = self.decode(item, period, &mut names)?;
                let (_, sk) = key_of(item).unwrap_or_default();
                let home = if pool { POOL_PARTITION.to_string() } else { partition_of(&line) };
                match index_of_sk(&sk) {
                    Some(n) if n < count && home == partition && line_sk(&line, n, stamp) == sk => {
                        tally.add(n, &line)?
                    }
                    _ => {
                        mismatch = Some(format!(
                            "period {period}: stored item {partition} / {sk} is not one of the input lines"
                        ));
                    }
                }
            }
            Ok(())
        })
        .await?;
        let tally = match mismatch {
            Some(reason) => Err(reason),
            None => Ok(tally),
        };
        Ok((partition, tally))
    }

    /// Deletes this run's items: every item under its version prefix in each partition it wrote
    /// to (listed, not recomputed from lines it no longer has); best effort, like `discard`.
    async fn discard_written(&self, period: BillingPeriod, stamp: &Stamp, written: &Written, why: &str) {
        let prefix = version_prefix(period, &stamp.tag);
        for partition in written.partitions.keys() {
            let mut keys = Vec::new();
            let listed = self
                .query_pages(self.partition_query(partition, &prefix).projection_expression("#pk, #sk"), |page| {
                    keys.extend(page.iter().filter_map(key_of));
                    Ok(())
                })
                .await;
            let deleted = match listed {
                Ok(()) => self.delete_keys(keys).await,
                Err(e) => Err(e),
            };
            if let Err(e) = deleted {
                tracing::warn!(table = %self.table, %partition, error = %e,
                    "{why}: could not delete this run's items; a later run removes them");
            }
        }
    }
}

/// The tally of `partition`, added on first use; refused once the partitions' names no longer fit
/// in the pointer item (which lists them).
fn written_partition<'a>(store: &str, written: &'a mut Written, partition: &str) -> Result<&'a mut Tally> {
    let Written { partitions, partition_bytes, .. } = written;
    if !partitions.contains_key(partition) {
        *partition_bytes += partition.len() + 4;
        if *partition_bytes > MAX_PARTITION_BYTES {
            return Err(Error::Store {
                path: PathBuf::from(store),
                reason: format!(
                    "{} tenants do not fit in one pointer item (400 KB); too many tenants for this store",
                    partitions.len() + 1
                ),
                retryable: false,
            });
        }
        partitions.insert(partition.to_string(), Tally::default());
    }
    partitions
        .get_mut(partition)
        .ok_or_else(|| Error::Internal(format!("partition {partition} missing from its own tally")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use curflow_model::testing::cost_key;

    fn line(cents: i64, scale: u32) -> CostLine {
        let period = "2026-10".parse().unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 10, 3).unwrap();
        let amounts = Amounts { unblended_cost: Decimal::new(cents, scale), line_items: 1, ..Amounts::default() };
        CostLine::new(period, cost_key(day, Some("a"), "AmazonEC2", "BoxUsage"), amounts)
    }

    #[test]
    fn a_digest_ignores_the_scale_but_not_the_value_or_the_index() {
        assert_eq!(digest(4, &line(150, 2)), digest(4, &line(1500, 3)), "1.50 = 1.500 as DynamoDB reads it back");
        assert_ne!(digest(4, &line(150, 2)), digest(4, &line(151, 2)));
        assert_ne!(digest(4, &line(150, 2)), digest(5, &line(150, 2)));
    }

    #[test]
    fn a_tally_is_independent_of_order_and_sees_a_moved_amount() {
        let (a, b) = (line(150, 2), line(275, 2));
        let (mut one, mut two) = (Tally::default(), Tally::default());
        one.add(0, &a).unwrap();
        one.add(1, &b).unwrap();
        two.add(1, &b).unwrap();
        two.add(0, &a).unwrap();
        assert_eq!(one, two);
        // The same total and count, the amounts swapped between indexes: the digest differs.
        let mut swapped = Tally::default();
        swapped.add(0, &b).unwrap();
        swapped.add(1, &a).unwrap();
        assert_eq!((swapped.count, swapped.total), (one.count, one.total));
        assert_ne!(swapped, one);
    }
}
