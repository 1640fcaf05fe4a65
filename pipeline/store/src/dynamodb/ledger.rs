//! The usage ledger on DynamoDB.
//!
//! | item | `accountant_id` | `sk` | attributes |
//! |---|---|---|---|
//! | day pointer | `_ledger` | `day#<source>#<YYYY-MM-DD>` | `version`, `tag`, `chunks` (N), `record` ([`UsageDay`] as JSON) |
//! | quantities | `_ledger#<source>#<YYYY-MM-DD>` | `v#<tag>#<nnnn>` | `rows`: JSON `[[driver, tenant, "quantity"], …]`, ≤ ~300 KB |
//! | checkpoint | `_ledger` | `checkpoint#<source>` | `record` ([`IngestCheckpoint`] as JSON) |
//!
//! A day's quantities are packed into a few large items rather than one item per (driver,
//! tenant): 10,000 tenants cost one write unit per KB of text instead of 10,000 writes. Replacing
//! a day writes the new version's chunks under sort keys of their own (`tag`: the version hashed with
//! a per-write nonce, so no two writes share a key, even of equal content), then puts the pointer
//! (returning the old one) and deletes the chunks of the version it replaced. Readers read the
//! pointer, then the chunks of its version, and start again when a concurrent switch deleted them
//! in between (the chunk count is on the pointer). Two writers of one day both switch; the last
//! switch wins and deletes the other's chunks, so the day ends with one version. A writer that
//! dies before its switch leaves chunks no pointer names (harmless; never read).

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::NaiveDate;

use super::item::{Item, PK, SK, text_of};
use super::{DynamoStore, MAX_READ_RETRIES};
use crate::CostStore;
use crate::error::{Error, Result};
use crate::ledger::{DayOutcome, DayQuantities, IngestCheckpoint, UsageDay, UsageLedger};

const LEDGER_PARTITION: &str = "_ledger";
/// Text per quantities item: under DynamoDB's 400 KB item limit with room for the keys.
const CHUNK_BYTES: usize = 300_000;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn day_sk(source: &str, day: NaiveDate) -> String {
    format!("day#{source}#{}", day.format("%Y-%m-%d"))
}

fn chunk_partition(source: &str, day: NaiveDate) -> String {
    format!("{LEDGER_PARTITION}#{source}#{}", day.format("%Y-%m-%d"))
}

fn chunk_sk(tag: &str, index: usize) -> String {
    format!("v#{tag}#{index:04}")
}

/// The quantities as JSON arrays of at most [`CHUNK_BYTES`] each.
fn chunks(quantities: &DayQuantities) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut current: Vec<[String; 3]> = Vec::new();
    let mut size = 0;
    for ((driver, tenant), q) in quantities {
        let row = [driver.clone(), tenant.clone(), q.normalize().to_string()];
        let row_size = row.iter().map(|t| t.len() + 6).sum::<usize>();
        if size + row_size > CHUNK_BYTES && !current.is_empty() {
            out.push(serde_json::to_string(&current).map_err(|e| Error::Internal(e.to_string()))?);
            current.clear();
            size = 0;
        }
        size += row_size;
        current.push(row);
    }
    if !current.is_empty() || out.is_empty() {
        out.push(serde_json::to_string(&current).map_err(|e| Error::Internal(e.to_string()))?);
    }
    Ok(out)
}

/// A day pointer: the stored day, the tag its chunks are written under and how many there are.
struct Pointer {
    day: UsageDay,
    tag: String,
    chunks: usize,
}

/// The source name must not contain the key separator (`#`): it is part of sort keys.
fn check_source(source: &str) -> Result<()> {
    if source.is_empty() || source.contains('#') {
        return Err(Error::Argument(format!("evidence source name {source:?} must be non-empty and without '#'")));
    }
    Ok(())
}

impl DynamoStore {
    fn decode_pointer(&self, item: &Item) -> Result<Pointer> {
        let record = text_of(item, "record").ok_or_else(|| self.unreadable(item, "no `record`".into()))?;
        let tag = text_of(item, "tag").ok_or_else(|| self.unreadable(item, "no `tag`".into()))?.to_string();
        let day: UsageDay = serde_json::from_str(record).map_err(|e| self.unreadable(item, e.to_string()))?;
        let chunks = match item.get("chunks") {
            Some(AttributeValue::N(n)) => n.parse::<usize>().ok(),
            _ => None,
        }
        .ok_or_else(|| self.unreadable(item, "no `chunks` count".into()))?;
        Ok(Pointer { day, tag, chunks })
    }

    async fn ledger_pointer(&self, source: &str, day: NaiveDate) -> Result<Option<Pointer>> {
        let item = self.get_one(LEDGER_PARTITION, day_sk(source, day)).await?;
        item.map(|item| self.decode_pointer(&item)).transpose()
    }

    /// The quantities of one version, or `None` when some of its chunks are gone (a concurrent
    /// switch deleted them).
    async fn ledger_chunks(&self, pointer: &Pointer) -> Result<Option<DayQuantities>> {
        let (day, prefix) = (&pointer.day, format!("v#{}#", pointer.tag));
        let items = self.query_all(self.partition_query(&chunk_partition(&day.source, day.day), &prefix)).await?;
        if items.len() != pointer.chunks {
            return Ok(None);
        }
        let mut quantities = DayQuantities::new();
        for item in &items {
            let text = text_of(item, "rows").ok_or_else(|| self.unreadable(item, "no `rows`".into()))?;
            let rows: Vec<[String; 3]> =
                serde_json::from_str(text).map_err(|e| self.unreadable(item, e.to_string()))?;
            for [driver, tenant, q] in rows {
                let q = curflow_model::money::parse_decimal(&q)
                    .map_err(|e| self.unreadable(item, format!("quantity {q:?}: {e}")))?;
                quantities.insert((driver, tenant), q);
            }
        }
        Ok(Some(quantities))
    }

    async fn delete_chunks(&self, pointer: &Pointer) -> Result<()> {
        let (source, day) = (&pointer.day.source, pointer.day.day);
        for index in 0..pointer.chunks {
            let req = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key(PK, s(chunk_partition(source, day)))
                .key(SK, s(chunk_sk(&pointer.tag, index)));
            self.retrying(|| req.clone().send()).await.map_err(|e| self.aws_error("DeleteItem", e))?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl UsageLedger for DynamoStore {
    async fn replace_usage_day(&mut self, day: &UsageDay, quantities: &DayQuantities) -> Result<DayOutcome> {
        check_source(&day.source)?;
        if let Some(stored) = self.ledger_pointer(&day.source, day.day).await?
            && stored.day.version == day.version
        {
            return Ok(DayOutcome::Unchanged);
        }
        let texts = chunks(quantities)?;
        let nonce = (super::retry::random_u64().to_le_bytes(), std::process::id().to_le_bytes());
        let tag = crate::hash::short_hash([day.version.as_bytes(), &nonce.0, &nonce.1]);
        for (index, text) in texts.iter().enumerate() {
            let mut item = Item::with_capacity(3);
            item.insert(PK.into(), s(chunk_partition(&day.source, day.day)));
            item.insert(SK.into(), s(chunk_sk(&tag, index)));
            item.insert("rows".into(), s(text.clone()));
            self.put_one(item, "PutItem").await?;
        }
        let record = serde_json::to_string(day).map_err(|e| Error::Internal(e.to_string()))?;
        let mut pointer = Item::with_capacity(5);
        pointer.insert(PK.into(), s(LEDGER_PARTITION));
        pointer.insert(SK.into(), s(day_sk(&day.source, day.day)));
        pointer.insert("version".into(), s(day.version.clone()));
        pointer.insert("tag".into(), s(tag));
        pointer.insert("chunks".into(), AttributeValue::N(texts.len().to_string()));
        pointer.insert("record".into(), s(record));
        let req =
            self.client.put_item().table_name(&self.table).set_item(Some(pointer)).return_values(ReturnValue::AllOld);
        let out = self.retrying(|| req.clone().send()).await.map_err(|e| self.aws_error("PutItem", e))?;
        let previous = match out.attributes.filter(|a| !a.is_empty()) {
            Some(old) => Some(self.decode_pointer(&old)?),
            None => None,
        };
        let Some(old) = previous else { return Ok(DayOutcome::Replaced { previous: None }) };
        // Readers of the old version start again once its chunks are gone; a failure here only
        // leaves unreferenced items behind.
        if let Err(e) = self.delete_chunks(&old).await {
            tracing::warn!(source = %day.source, day = %day.day, error = %e, "old usage chunks not deleted");
        }
        if old.day.version == day.version {
            // A concurrent ingest of the same content switched first.
            Ok(DayOutcome::Unchanged)
        } else {
            Ok(DayOutcome::Replaced { previous: Some(old.day.version) })
        }
    }

    async fn usage_days(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<UsageDay>> {
        let items = self.query_all(self.partition_query(LEDGER_PARTITION, "day#")).await?;
        let mut out = Vec::new();
        for item in &items {
            let pointer = self.decode_pointer(item)?;
            if (from..=to).contains(&pointer.day.day) {
                out.push(pointer.day);
            }
        }
        out.sort_by(|a, b| (&a.source, a.day).cmp(&(&b.source, b.day)));
        Ok(out)
    }

    async fn usage_day(&self, source: &str, day: NaiveDate) -> Result<Option<(UsageDay, DayQuantities)>> {
        check_source(source)?;
        for _ in 0..MAX_READ_RETRIES {
            let Some(pointer) = self.ledger_pointer(source, day).await? else {
                return Ok(None);
            };
            if let Some(quantities) = self.ledger_chunks(&pointer).await? {
                return Ok(Some((pointer.day, quantities)));
            }
        }
        Err(Error::Store {
            path: self.describe().into(),
            reason: format!("usage of {source} on {day} was replaced {MAX_READ_RETRIES} times while being read"),
            retryable: true,
        })
    }

    async fn usage_checkpoint(&self, source: &str) -> Result<Option<IngestCheckpoint>> {
        let Some(item) = self.get_one(LEDGER_PARTITION, format!("checkpoint#{source}")).await? else {
            return Ok(None);
        };
        let record = text_of(&item, "record").ok_or_else(|| self.unreadable(&item, "no `record`".into()))?;
        serde_json::from_str(record).map(Some).map_err(|e| self.unreadable(&item, e.to_string()))
    }

    async fn put_usage_checkpoint(&mut self, checkpoint: &IngestCheckpoint) -> Result<()> {
        check_source(&checkpoint.source)?;
        let record = serde_json::to_string(checkpoint).map_err(|e| Error::Internal(e.to_string()))?;
        let mut item = Item::with_capacity(3);
        item.insert(PK.into(), s(LEDGER_PARTITION));
        item.insert(SK.into(), s(format!("checkpoint#{}", checkpoint.source)));
        item.insert("record".into(), s(record));
        self.put_one(item, "PutItem").await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn large_days_are_packed_in_chunks_under_the_item_limit_and_read_back_whole() {
        let quantities: DayQuantities = (0..30_000)
            .map(|i| (("lambda_gb_seconds".to_string(), format!("acct-{i:05}")), rust_decimal::Decimal::new(i, 3)))
            .collect();
        let texts = chunks(&quantities).unwrap();
        assert!(texts.len() > 1, "{}", texts.len());
        assert!(texts.iter().all(|t| t.len() < 350_000));
        let mut back = DayQuantities::new();
        for t in &texts {
            for [dr, tenant, q] in serde_json::from_str::<Vec<[String; 3]>>(t).unwrap() {
                back.insert((dr, tenant), q.parse().unwrap());
            }
        }
        assert_eq!(back, quantities);
        assert_eq!(chunks(&DayQuantities::new()).unwrap(), ["[]"]);
    }
}
