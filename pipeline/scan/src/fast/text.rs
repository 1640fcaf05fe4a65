//! Text columns on the fast path: each distinct value is interned once per partition into a small
//! integer id, and each Parquet dictionary is mapped to those ids once per row group.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int32Array};
use arrow::datatypes::{DataType, Int32Type};

use crate::error::{Error, Result};
use curflow_model::Name;
use curflow_model::fxhash::FxBuild;

/// Distinct values of one text column. Id 0 is NULL. Values are kept as [`Name`]s, so the cost
/// lines built from the groups share them instead of allocating a string per line.
pub(super) struct Interner {
    ids: HashMap<Name, u32, FxBuild>,
    values: Vec<Option<Name>>,
    /// Bytes of the interned text (each value once), for the memory accounting.
    text_bytes: usize,
}

/// Bytes an interned value costs beyond its text: the `Arc` header, the map entry and its
/// control byte, the `values` slot.
const PER_VALUE: usize = 16 + 24 + 1 + 16;

impl Interner {
    fn new() -> Self {
        Self { ids: HashMap::default(), values: vec![None], text_bytes: 0 }
    }

    /// Bytes held (an estimate from capacities and text lengths).
    pub(super) fn bytes(&self) -> usize {
        self.text_bytes + self.values.capacity().max(self.ids.capacity()) * PER_VALUE
    }

    pub(super) fn intern(&mut self, value: Option<&str>) -> Result<u32> {
        let Some(value) = value else { return Ok(0) };
        if let Some(&id) = self.ids.get(value) {
            return Ok(id);
        }
        // The two largest ids mark dictionary entries without one (`NOT_INTERNED`).
        let id = u32::try_from(self.values.len())
            .ok()
            .filter(|&id| id < NOT_INTERNED - 1)
            .ok_or_else(|| Error::Internal("more than 4 billion distinct values in one column".into()))?;
        let name = Name::from(value);
        self.text_bytes += value.len();
        self.ids.insert(name.clone(), id);
        self.values.push(Some(name));
        Ok(id)
    }

    /// Whether `value` has an id already (NULL always has).
    pub(super) fn contains(&self, value: Option<&str>) -> bool {
        value.is_none_or(|v| self.ids.contains_key(v))
    }

    /// Number of ids handed out, NULL included.
    pub(super) fn len(&self) -> usize {
        self.values.len()
    }

    pub(super) fn get(&self, id: u32) -> Option<&str> {
        self.values.get(id as usize).and_then(|v| v.as_deref())
    }

    /// The shared value of `id` (`None` for NULL).
    pub(super) fn name(&self, id: u32) -> Option<&Name> {
        self.values.get(id as usize).and_then(Option::as_ref)
    }
}

fn same_buffers(a: &ArrayRef, b: &ArrayRef) -> bool {
    let (a, b) = (a.to_data(), b.to_data());
    a.len() == b.len()
        && a.offset() == b.offset()
        && a.buffers().len() == b.buffers().len()
        && a.buffers().iter().zip(b.buffers()).all(|(x, y)| x.as_ptr() == y.as_ptr() && x.len() == y.len())
}

fn strings_of(array: &ArrayRef) -> Result<ArrayRef> {
    arrow::compute::cast(array, &DataType::Utf8).map_err(|e| Error::Internal(format!("cannot read text: {e}")))
}

/// A tag value as the generic plan reads it: trimmed, blank = untagged (see `udf::clean_tag`).
pub(super) fn clean_tag(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|s| !s.is_empty())
}

/// How a batch's rows point at values: Parquet dictionary keys, or (when the reader did not keep
/// the dictionary) interned ids. Either way a row's value is `index_ids()[index]`.
pub(super) enum RowIndices<'a> {
    Dict(&'a Int32Array),
    Ids(&'a [u32]),
}

/// One text column's state in a partition.
pub(super) struct TextColumn {
    pub(super) interner: Interner,
    /// The dictionary last seen (its buffers kept alive, so a pointer match cannot be a reused
    /// allocation) and the id of each of its values. The Parquet reader hands out the same
    /// dictionary for every batch of a column chunk, so this changes once per row group.
    dictionary: Option<ArrayRef>,
    dictionary_ids: Vec<u32>,
    /// Whether every entry of `dictionary` has its id (always, unless [`Self::prepare_rows`]
    /// was given the rows wanted).
    dictionary_complete: bool,
    /// Ids of the last batch's rows when it was not dictionary-encoded.
    row_ids: Vec<u32>,
    plain: bool,
    /// Changes whenever the meaning of a row index changes (new dictionary, plain batch), so
    /// tables built per index know when to rebuild.
    pub(super) generation: u64,
    /// Tenant tags are trimmed and blank means NULL.
    clean: bool,
}

impl TextColumn {
    pub(super) fn new(clean: bool) -> Self {
        Self {
            interner: Interner::new(),
            dictionary: None,
            dictionary_ids: Vec::new(),
            dictionary_complete: false,
            row_ids: Vec::new(),
            plain: false,
            generation: 0,
            clean,
        }
    }

    fn intern(&mut self, v: Option<&str>) -> Result<u32> {
        self.interner.intern(if self.clean { clean_tag(v) } else { v })
    }

    /// Interns the values of `array` (once per dictionary), so that afterwards every value of the
    /// batch has an id and [`Self::rows`] can index it.
    pub(super) fn prepare(&mut self, array: &ArrayRef) -> Result<()> {
        self.prepare_rows(array, None)
    }

    /// Like [`Self::prepare`], but only the values of the rows `wanted` marks get an id; the
    /// other rows read NULL (id 0).
    ///
    /// For the resource id, which only untagged rows keep in their key: in a realistic month it
    /// is the one high-cardinality column read (tens of thousands of resources, its Parquet
    /// dictionary falling back to plain pages, so each batch brings a dictionary of its own),
    /// and tagged rows are ~70 % of rows. Interning their values was ~6 % of a 10M-row month's
    /// CPU time, for nothing.
    pub(super) fn prepare_rows(&mut self, array: &ArrayRef, wanted: Option<&[bool]>) -> Result<()> {
        let is_wanted = |row: usize| wanted.is_none_or(|w| w.get(row).copied().unwrap_or(true));
        if let Some(dict) = array.as_dictionary_opt::<Int32Type>() {
            let values = dict.values();
            let fresh = self.is_fresh(values);
            if !fresh && self.dictionary_complete {
                return Ok(());
            }
            if fresh {
                self.dictionary = Some(Arc::clone(values));
                self.dictionary_ids.clear();
                self.dictionary_ids.resize(values.len(), NOT_INTERNED);
                self.dictionary_complete = false;
                self.plain = false;
                self.generation += 1;
            }
            // The dictionary entries the wanted rows use that have no id yet.
            let mut missing: Vec<usize> = Vec::new();
            let keys = dict.keys();
            let index = |row: usize| usize::try_from(keys.values()[row]).ok();
            match wanted {
                None if fresh => missing.extend(0..values.len()),
                None => {}
                Some(_) => {
                    for row in (0..keys.len()).filter(|&row| keys.is_valid(row) && is_wanted(row)) {
                        if let Some(i) = index(row)
                            && self.dictionary_ids.get(i) == Some(&NOT_INTERNED)
                        {
                            // Marked now so a value many rows use is listed once.
                            self.dictionary_ids[i] = NOT_INTERNED - 1;
                            missing.push(i);
                        }
                    }
                    // A dictionary kept across batches (a row group's own) that a later batch
                    // needs more of: all of it now, so the tables built per index (rebuilt when
                    // ids change) are built at most twice per dictionary, not once per batch.
                    if !fresh && !missing.is_empty() {
                        missing
                            .extend((0..self.dictionary_ids.len()).filter(|&i| self.dictionary_ids[i] == NOT_INTERNED));
                        self.dictionary_complete = true;
                    }
                }
            }
            if wanted.is_none() {
                self.dictionary_complete = true;
            }
            if !missing.is_empty() {
                let strings = strings_of(values)?;
                let strings = strings.as_string::<i32>();
                for i in missing {
                    let value = strings.is_valid(i).then(|| strings.value(i));
                    self.dictionary_ids[i] = self.intern(value)?;
                }
                if !fresh {
                    self.generation += 1;
                }
            }
            return Ok(());
        }
        // Not dictionary-encoded after all (the reader ignored the hint): intern row by row.
        let strings = strings_of(array)?;
        let mut ids = std::mem::take(&mut self.row_ids);
        ids.clear();
        for (row, v) in strings.as_string::<i32>().iter().enumerate() {
            ids.push(if is_wanted(row) { self.intern(v)? } else { 0 });
        }
        self.row_ids = ids;
        self.plain = true;
        self.dictionary = None;
        self.generation += 1;
        Ok(())
    }

    /// Whether `values` is a dictionary other than the one the ids are for.
    fn is_fresh(&self, values: &ArrayRef) -> bool {
        self.plain || self.dictionary.as_ref().is_none_or(|cached| !same_buffers(cached, values))
    }

    /// Whether [`Self::prepare_rows`] of `array` would read which rows are wanted: not when it is
    /// the dictionary of the batch before and every entry of it has its id already.
    pub(super) fn wants_rows(&self, array: &ArrayRef) -> bool {
        match array.as_dictionary_opt::<Int32Type>() {
            Some(dict) => !self.dictionary_complete || self.is_fresh(dict.values()),
            None => true,
        }
    }

    /// The id of each index a row can carry (see [`RowIndices`]); index 0 of a plain batch and
    /// NULL dictionary keys are NULL.
    pub(super) fn index_ids(&self) -> IndexIds<'_> {
        if self.plain { IndexIds::Identity(self.interner.len()) } else { IndexIds::Map(&self.dictionary_ids) }
    }

    /// How the rows of `array` (the batch last given to [`Self::prepare`]) index values.
    pub(super) fn rows<'a>(&'a self, array: &'a ArrayRef) -> RowIndices<'a> {
        match array.as_dictionary_opt::<Int32Type>() {
            Some(dict) if !self.plain => RowIndices::Dict(dict.keys()),
            _ => RowIndices::Ids(&self.row_ids),
        }
    }
}

/// A dictionary entry no wanted row has used yet ([`TextColumn::prepare_rows`]): read as NULL.
const NOT_INTERNED: u32 = u32::MAX;

/// Index → id: a dictionary's ids, or the identity over the interned ids.
pub(super) enum IndexIds<'a> {
    Map(&'a [u32]),
    Identity(usize),
}

impl IndexIds<'_> {
    /// `f(id)` for each index, in index order (an entry without an id: `f(0)`, NULL).
    pub(super) fn table<T>(&self, mut f: impl FnMut(u32) -> T) -> Vec<T> {
        match self {
            Self::Map(ids) => ids.iter().map(|&id| f(if id >= NOT_INTERNED - 1 { 0 } else { id })).collect(),
            Self::Identity(n) => (0..*n).map(|id| f(u32::try_from(id).unwrap_or(0))).collect(),
        }
    }
}

/// Calls `apply(row, table[index of row])` for every row; NULL rows get `T::default()`, as do
/// indices outside the table (a corrupt dictionary key).
#[inline]
pub(super) fn for_each_row<T: Copy + Default>(rows: &RowIndices<'_>, table: &[T], mut apply: impl FnMut(usize, T)) {
    let at = |index: usize| table.get(index).copied().unwrap_or_default();
    match rows {
        RowIndices::Ids(ids) => {
            for (row, &id) in ids.iter().enumerate() {
                apply(row, at(id as usize));
            }
        }
        RowIndices::Dict(keys) => {
            // A negative key becomes a huge index, which is outside the table.
            let index = |k: i32| usize::try_from(k).unwrap_or(usize::MAX);
            match keys.nulls().filter(|n| n.null_count() > 0) {
                None => {
                    for (row, &k) in keys.values().iter().enumerate() {
                        apply(row, at(index(k)));
                    }
                }
                Some(nulls) => {
                    for (row, &k) in keys.values().iter().enumerate() {
                        apply(row, if nulls.is_valid(row) { at(index(k)) } else { T::default() });
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ids_of(column: &TextColumn, array: &ArrayRef) -> Vec<u32> {
        let table = column.index_ids().table(|id| id);
        let mut out = Vec::new();
        for_each_row(&column.rows(array), &table, |_, id| out.push(id));
        out
    }

    #[test]
    fn interned_ids_are_stable_and_null_is_zero() {
        let mut column = TextColumn::new(true);
        let values: ArrayRef = Arc::new(arrow::array::StringArray::from(vec![Some(" a "), Some(""), Some("b")]));
        let keys = Int32Array::from(vec![Some(0), None, Some(1), Some(2), Some(0)]);
        let dict: ArrayRef = Arc::new(arrow::array::DictionaryArray::new(keys, values));
        column.prepare(&dict).unwrap();
        assert_eq!(ids_of(&column, &dict), vec![1, 0, 0, 2, 1], "tags are trimmed; blank and NULL are untagged");
        assert_eq!(column.interner.get(1), Some("a"));
        let generation = column.generation;
        column.prepare(&dict).unwrap();
        assert_eq!(column.generation, generation, "the same dictionary is not mapped again");
    }

    #[test]
    fn only_the_wanted_rows_values_get_ids() {
        let mut column = TextColumn::new(false);
        let values: ArrayRef = Arc::new(arrow::array::StringArray::from(vec!["r1", "r2", "r3", "r4"]));
        let dict = |keys: Vec<i32>| -> ArrayRef {
            Arc::new(arrow::array::DictionaryArray::new(Int32Array::from(keys), Arc::clone(&values)))
        };
        let plain_of = |v: &[&str]| -> ArrayRef { Arc::new(arrow::array::StringArray::from(v.to_vec())) };
        let first = dict(vec![0, 1, 2, 1]);
        assert!(column.wants_rows(&first));
        column.prepare_rows(&first, Some(&[false, true, false, true])).unwrap();
        assert!(column.wants_rows(&first), "entries without ids: the next batch's rows are looked at");
        assert_eq!(ids_of(&column, &first), vec![0, 1, 0, 1], "unwanted rows read NULL");
        assert_eq!(column.interner.len(), 2, "NULL and r2 only");
        let generation = column.generation;
        // The same dictionary again, wanting a value without an id: the whole dictionary gets
        // ids now (the per-index tables are rebuilt once, not once per batch).
        let second = dict(vec![3, 0]);
        column.prepare_rows(&second, Some(&[true, false])).unwrap();
        assert_eq!(ids_of(&column, &second), vec![2, 3], "r4 first (wanted), then the rest: r1, r3");
        assert_eq!(column.interner.get(1), Some("r2"));
        assert_ne!(column.generation, generation, "ids changed: tables per index are rebuilt");
        let generation = column.generation;
        assert!(!column.wants_rows(&second), "every entry has its id: rows need not be looked at");
        assert!(column.wants_rows(&plain_of(&["r1"])));
        column.prepare_rows(&second, Some(&[true, true])).unwrap();
        assert_eq!(column.generation, generation, "nothing new: not rebuilt");
        // Plain batches: unwanted rows read NULL, wanted ones keep their ids.
        let plain: ArrayRef = Arc::new(arrow::array::StringArray::from(vec![Some("r2"), Some("r9"), Some("r8")]));
        column.prepare_rows(&plain, Some(&[true, false, true])).unwrap();
        assert_eq!(ids_of(&column, &plain), vec![1, 0, 5]);
        assert!(!column.interner.contains(Some("r9")));
    }

    #[test]
    fn plain_batches_are_interned_row_by_row_with_the_same_ids() {
        let mut column = TextColumn::new(false);
        let values: ArrayRef = Arc::new(arrow::array::StringArray::from(vec![Some("x"), Some("y")]));
        let dict: ArrayRef =
            Arc::new(arrow::array::DictionaryArray::new(Int32Array::from(vec![0, 1]), Arc::clone(&values)));
        column.prepare(&dict).unwrap();
        let plain: ArrayRef = Arc::new(arrow::array::StringArray::from(vec![Some("y"), None, Some("z")]));
        column.prepare(&plain).unwrap();
        assert_eq!(ids_of(&column, &plain), vec![2, 0, 3]);
        column.prepare(&dict).unwrap();
        assert_eq!(ids_of(&column, &dict), vec![1, 2], "back to the dictionary after a plain batch");
    }
}
