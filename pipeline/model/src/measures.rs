//! Per-row cost measures, in exact scaled integers (see [`crate::money`]).
//!
//! These are the reference expressions of `../shared/reference/cur-domain.md` §3, written once in
//! Rust so that the same code runs inside DataFusion (through the UDFs in `scan::udf`) and in unit
//! tests. All inputs are at [`crate::money::MONEY_SCALE`]; a NULL input counts as 0.
//!
//! * **unblended**: `line_item_unblended_cost` over all types. Its sum is the invoice (before
//!   negotiated discounts); Savings Plan negations and credits are included, as on the bill.
//! * **net unblended**: `line_item_net_unblended_cost` where the column exists and is not NULL,
//!   otherwise unblended (the FOCUS `BilledCost` rule). Accounts without EDP/PPA discounts have no
//!   net columns, and then net = unblended.
//! * **amortized**: the AWS/CID amortized CASE (§3.3): covered usage at its effective cost,
//!   upfront payments and negations at 0, unused commitment on the fee rows.
//! * **ri_sp_trueup** and **ri_sp_upfront_fees** (CID §3.4): what moves between unblended and
//!   amortized, so that `unblended = amortized + ri_sp_trueup + ri_sp_upfront_fees` (§3.5).
//! * **contracted** ([`cur_contracted_cost`]): FOCUS `ContractedCost`, derived from a group's net
//!   unblended and list cost, because a CUR has no contracted-price column.

use crate::line_item::LineItemKind;

/// The commitment (RI / Savings Plan) columns a row may carry; absent columns are 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitmentAmounts {
    /// `savings_plan_savings_plan_effective_cost`
    pub sp_effective_cost: i128,
    /// `savings_plan_total_commitment_to_date`
    pub sp_total_commitment_to_date: i128,
    /// `savings_plan_used_commitment`
    pub sp_used_commitment: i128,
    /// `savings_plan_amortized_upfront_commitment_for_billing_period`
    pub sp_amortized_upfront_commitment: i128,
    /// `reservation_effective_cost`
    pub ri_effective_cost: i128,
    /// `reservation_unused_amortized_upfront_fee_for_billing_period`
    pub ri_unused_amortized_upfront_fee: i128,
    /// `reservation_unused_recurring_fee`
    pub ri_unused_recurring_fee: i128,
    /// `reservation_amortized_upfront_fee_for_billing_period`
    pub ri_amortized_upfront_fee: i128,
}

/// One row's inputs to the measures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowInputs {
    pub kind: LineItemKind,
    /// `reservation_reservation_a_r_n` is present and non-empty (NULL and `''` are the same).
    pub has_reservation_arn: bool,
    pub unblended: i128,
    /// `line_item_net_unblended_cost`, `None` when the column is absent or NULL.
    pub net_unblended: Option<i128>,
    pub commitments: CommitmentAmounts,
}

/// Net unblended: the net column where present, else unblended.
pub fn net_unblended(row: &RowInputs) -> i128 {
    row.net_unblended.unwrap_or(row.unblended)
}

/// Contracted cost (FOCUS `ContractedCost`: the usage at the negotiated price, inclusive of
/// negotiated discounts, before commitment discounts) of CUR rows of `kind`, from their net
/// unblended cost and list cost. A legacy CUR or CUR 2.0 carries no contracted price, so:
///
/// * `SavingsPlanNegation` → 0: the negation is the Savings Plan's discount, a commitment
///   discount, which contracted cost excludes (its covered usage stays at its own price);
/// * `DiscountedUsage` → the list (public on-demand) cost: the report bills RI-covered usage at 0
///   and has no negotiated price for it, so the public price is the best figure it gives;
/// * every other type → net unblended cost (net of EDP/private-pricing discounts where the report
///   has net columns, else unblended): what the provider charges at the negotiated rate.
///
/// Applies per group of one line-item type exactly as per row, because it is linear in its inputs.
pub fn cur_contracted_cost(kind: LineItemKind, net_unblended: i128, list: i128) -> i128 {
    match kind {
        LineItemKind::SavingsPlanNegation => 0,
        LineItemKind::DiscountedUsage => list,
        _ => net_unblended,
    }
}

/// Amortized cost, the reference CASE (cur-domain.md §3.3).
pub fn amortized(row: &RowInputs) -> i128 {
    let c = &row.commitments;
    match row.kind {
        LineItemKind::SavingsPlanCoveredUsage => c.sp_effective_cost,
        LineItemKind::SavingsPlanRecurringFee => c.sp_total_commitment_to_date - c.sp_used_commitment,
        LineItemKind::SavingsPlanNegation | LineItemKind::SavingsPlanUpfrontFee => 0,
        LineItemKind::DiscountedUsage => c.ri_effective_cost,
        LineItemKind::RiFee => c.ri_unused_amortized_upfront_fee + c.ri_unused_recurring_fee,
        LineItemKind::Fee if row.has_reservation_arn => 0,
        _ => row.unblended,
    }
}

/// The part of recurring commitment fees that amortization moves onto usage (CID `ri_sp_trueup`).
pub fn ri_sp_trueup(row: &RowInputs) -> i128 {
    let c = &row.commitments;
    match row.kind {
        LineItemKind::SavingsPlanRecurringFee => -c.sp_amortized_upfront_commitment,
        LineItemKind::RiFee => -c.ri_amortized_upfront_fee,
        _ => 0,
    }
}

/// Upfront commitment payments, which amortized cost spreads instead (CID `ri_sp_upfront_fees`).
pub fn ri_sp_upfront_fees(row: &RowInputs) -> i128 {
    match row.kind {
        LineItemKind::SavingsPlanUpfrontFee => row.unblended,
        LineItemKind::Fee if row.has_reservation_arn => row.unblended,
        _ => 0,
    }
}

/// Positions of the [`CommitmentAmounts`] fields, in declaration order (the order of
/// [`CommitmentAmounts::from_array`]).
pub const COMMITMENT_FIELDS: usize = 8;

impl CommitmentAmounts {
    /// The fields from an array in declaration order (the inverse of `to_array`, field by field on
    /// purpose: the compiler checks both lists name every field).
    pub fn from_array(v: [i128; COMMITMENT_FIELDS]) -> Self {
        let [
            sp_effective_cost,
            sp_total_commitment_to_date,
            sp_used_commitment,
            sp_amortized_upfront_commitment,
            ri_effective_cost,
            ri_unused_amortized_upfront_fee,
            ri_unused_recurring_fee,
            ri_amortized_upfront_fee,
        ] = v;
        Self {
            sp_effective_cost,
            sp_total_commitment_to_date,
            sp_used_commitment,
            sp_amortized_upfront_commitment,
            ri_effective_cost,
            ri_unused_amortized_upfront_fee,
            ri_unused_recurring_fee,
            ri_amortized_upfront_fee,
        }
    }
}

/// The commitment fields (positions as in [`CommitmentAmounts::from_array`]) that any measure
/// reads for a row of `kind`; the others do not change any measure and may be left 0.
///
/// Most rows are plain usage and read none: the fast Parquet path converts only these, instead of
/// eight money columns per row. Kept next to the measures so that a change to one is a change to
/// both; `commitments_read_covers_every_measure` checks them against each other.
pub fn commitments_read(kind: LineItemKind) -> &'static [usize] {
    match kind {
        LineItemKind::SavingsPlanCoveredUsage => &[0],
        LineItemKind::SavingsPlanRecurringFee => &[1, 2, 3],
        LineItemKind::DiscountedUsage => &[4],
        LineItemKind::RiFee => &[5, 6, 7],
        _ => &[],
    }
}

/// Which measure a [`RowInputs`] is evaluated for; lets one UDF type serve all four.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Measure {
    NetUnblended,
    Amortized,
    RiSpTrueup,
    RiSpUpfrontFees,
}

impl Measure {
    pub const ALL: [Measure; 4] = [Self::NetUnblended, Self::Amortized, Self::RiSpTrueup, Self::RiSpUpfrontFees];

    pub fn name(self) -> &'static str {
        match self {
            Self::NetUnblended => "net_unblended_cost",
            Self::Amortized => "amortized_cost",
            Self::RiSpTrueup => "ri_sp_trueup",
            Self::RiSpUpfrontFees => "ri_sp_upfront_fees",
        }
    }

    pub fn eval(self, row: &RowInputs) -> i128 {
        match self {
            Self::NetUnblended => net_unblended(row),
            Self::Amortized => amortized(row),
            Self::RiSpTrueup => ri_sp_trueup(row),
            Self::RiSpUpfrontFees => ri_sp_upfront_fees(row),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: LineItemKind, unblended: i128) -> RowInputs {
        RowInputs { kind, unblended, ..RowInputs::default() }
    }

    #[test]
    fn contracted_cost_excludes_commitment_discounts_and_prices_ri_usage_at_list() {
        // A Savings Plan-covered hour at its on-demand price 10 and its negation -10: contracted
        // keeps the covered usage, drops the discount.
        assert_eq!(cur_contracted_cost(LineItemKind::SavingsPlanCoveredUsage, 10, 10), 10);
        assert_eq!(cur_contracted_cost(LineItemKind::SavingsPlanNegation, -10, 0), 0);
        // RI-covered usage is billed 0; its list price stands in.
        assert_eq!(cur_contracted_cost(LineItemKind::DiscountedUsage, 0, 7), 7);
        // Everything else at its net (negotiated) cost, credits and discounts included.
        assert_eq!(cur_contracted_cost(LineItemKind::Usage, 9, 12), 9);
        assert_eq!(cur_contracted_cost(LineItemKind::Credit, -3, 0), -3);
        assert_eq!(cur_contracted_cost(LineItemKind::RiFee, 5, 0), 5);
    }

    fn identity_holds(rows: &[RowInputs]) -> bool {
        let sum = |f: fn(&RowInputs) -> i128| rows.iter().map(f).sum::<i128>();
        rows.iter().map(|r| r.unblended).sum::<i128>() == sum(amortized) + sum(ri_sp_trueup) + sum(ri_sp_upfront_fees)
    }

    #[test]
    fn savings_plan_month_satisfies_the_reconciliation_identity() {
        // Covered usage 10 on-demand, effective 7; negation -10; recurring fee row: commitment 9
        // (4 amortized upfront + 5 recurring), used 7; the 48 upfront paid this month.
        let mut covered = row(LineItemKind::SavingsPlanCoveredUsage, 10);
        covered.commitments.sp_effective_cost = 7;
        let negation = row(LineItemKind::SavingsPlanNegation, -10);
        let mut fee = row(LineItemKind::SavingsPlanRecurringFee, 5);
        fee.commitments = CommitmentAmounts {
            sp_total_commitment_to_date: 9,
            sp_used_commitment: 7,
            sp_amortized_upfront_commitment: 4,
            ..CommitmentAmounts::default()
        };
        let upfront = row(LineItemKind::SavingsPlanUpfrontFee, 48);
        let rows = [covered, negation, fee, upfront];
        assert_eq!(amortized(&covered), 7);
        assert_eq!(amortized(&negation), 0);
        assert_eq!(amortized(&fee), 2, "unused commitment stays on the fee row");
        assert_eq!(amortized(&upfront), 0);
        assert!(identity_holds(&rows));
    }

    #[test]
    fn reserved_instance_month_satisfies_the_reconciliation_identity() {
        let mut used = row(LineItemKind::DiscountedUsage, 0);
        used.commitments.ri_effective_cost = 30;
        let mut ri_fee = row(LineItemKind::RiFee, 20);
        ri_fee.commitments = CommitmentAmounts {
            ri_amortized_upfront_fee: 25,
            ri_unused_amortized_upfront_fee: 10,
            ri_unused_recurring_fee: 5,
            ..CommitmentAmounts::default()
        };
        let mut upfront = row(LineItemKind::Fee, 300);
        upfront.has_reservation_arn = true;
        assert_eq!(amortized(&ri_fee), 15);
        assert_eq!(amortized(&upfront), 0);
        assert_eq!(ri_sp_upfront_fees(&upfront), 300);
        assert!(identity_holds(&[used, ri_fee, upfront]));
    }

    #[test]
    fn fees_without_a_reservation_and_unknown_types_keep_their_unblended_cost() {
        let support = row(LineItemKind::Fee, 100);
        assert_eq!(amortized(&support), 100);
        assert_eq!(ri_sp_upfront_fees(&support), 0);
        for kind in [LineItemKind::Other, LineItemKind::Tax, LineItemKind::Credit, LineItemKind::Discount] {
            assert_eq!(amortized(&row(kind, -3)), -3);
        }
    }

    #[test]
    fn commitments_read_covers_every_measure() {
        for code in 0..=u8::MAX {
            let kind = LineItemKind::from_code(code);
            for seed in 1..50i128 {
                let all: [i128; COMMITMENT_FIELDS] = std::array::from_fn(|i| seed * 7919 * (i as i128 + 1) - 1000);
                let mut read = [0i128; COMMITMENT_FIELDS];
                for &i in commitments_read(kind) {
                    read[i] = all[i];
                }
                for has_reservation_arn in [false, true] {
                    let full = RowInputs {
                        kind,
                        has_reservation_arn,
                        unblended: seed * 31,
                        net_unblended: Some(seed * 29),
                        commitments: CommitmentAmounts::from_array(all),
                    };
                    let partial = RowInputs { commitments: CommitmentAmounts::from_array(read), ..full };
                    for m in Measure::ALL {
                        assert_eq!(m.eval(&full), m.eval(&partial), "{kind:?} {m:?}");
                    }
                }
            }
        }
    }

    /// The fast path sums a group's inputs and evaluates the measures once per group
    /// (`scan/src/fast/partial.rs`): exact only because, for a fixed line-item type and
    /// reservation flag, every measure of summed inputs equals the sum of the per-row measures.
    #[test]
    fn measures_are_additive() {
        let sum_rows = |rows: &[RowInputs]| {
            let mut total = RowInputs {
                kind: rows[0].kind,
                has_reservation_arn: rows[0].has_reservation_arn,
                ..RowInputs::default()
            };
            let mut commitments = [0i128; COMMITMENT_FIELDS];
            for r in rows {
                total.unblended += r.unblended;
                total.net_unblended = match (total.net_unblended, r.net_unblended) {
                    (None, None) => None,
                    (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
                };
                let c = r.commitments;
                let values = [
                    c.sp_effective_cost,
                    c.sp_total_commitment_to_date,
                    c.sp_used_commitment,
                    c.sp_amortized_upfront_commitment,
                    c.ri_effective_cost,
                    c.ri_unused_amortized_upfront_fee,
                    c.ri_unused_recurring_fee,
                    c.ri_amortized_upfront_fee,
                ];
                for (acc, v) in commitments.iter_mut().zip(values) {
                    *acc += v;
                }
            }
            total.commitments = CommitmentAmounts::from_array(commitments);
            total
        };
        for code in 0..=u8::MAX {
            let kind = LineItemKind::from_code(code);
            for has_reservation_arn in [false, true] {
                for with_net in [false, true] {
                    let rows: Vec<RowInputs> = (1..=5i128)
                        .map(|i| RowInputs {
                            kind,
                            has_reservation_arn,
                            unblended: i * 1_000_003 - 2_500_000,
                            net_unblended: with_net.then_some(i * 999_983),
                            commitments: CommitmentAmounts::from_array(std::array::from_fn(|f| {
                                (f as i128 + 3) * i * 7919 - 40_000
                            })),
                        })
                        .collect();
                    let summed = sum_rows(&rows);
                    for m in Measure::ALL {
                        let per_row: i128 = rows.iter().map(|r| m.eval(r)).sum();
                        assert_eq!(m.eval(&summed), per_row, "{kind:?} reservation={has_reservation_arn} {m:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn net_unblended_falls_back_to_unblended() {
        let mut r = row(LineItemKind::Usage, 10);
        assert_eq!(net_unblended(&r), 10);
        r.net_unblended = Some(8);
        assert_eq!(Measure::NetUnblended.eval(&r), 8);
    }
}
