//! The one table renderer of the CLI: aligned columns separated by two spaces, a rule under the
//! header and wherever a caller asks for one (before totals), no trailing spaces.

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table for people: cells are already formatted (rounded, grouped) by the caller.
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<String>,
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
    /// Indexes of rows preceded by a rule.
    rules: Vec<usize>,
}

impl Table {
    /// A table with these column names, every column left-aligned.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        let header: Vec<String> = header.into_iter().map(Into::into).collect();
        let align = vec![Align::Left; header.len()];
        Table { header, align, rows: Vec::new(), rules: Vec::new() }
    }

    /// Right-aligns the columns at these indexes (numbers).
    pub fn right(mut self, columns: impl IntoIterator<Item = usize>) -> Self {
        for i in columns {
            if let Some(a) = self.align.get_mut(i) {
                *a = Align::Right;
            }
        }
        self
    }

    /// Right-aligns every column from `first` on.
    pub fn right_from(self, first: usize) -> Self {
        let n = self.header.len();
        self.right(first..n)
    }

    /// Appends a row; missing cells are blank, extra cells are dropped.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        let mut cells: Vec<String> = cells.into_iter().map(Into::into).collect();
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    /// Draws a rule before the next row.
    pub fn rule(&mut self) {
        self.rules.push(self.rows.len());
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|i| self.rows.iter().map(|r| width(&r[i])).chain([width(&self.header[i])]).max().unwrap_or(0))
            .collect();
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .zip(&self.align)
                .map(|((c, w), a)| {
                    let pad = " ".repeat(w.saturating_sub(width(c)));
                    match a {
                        Align::Left => format!("{c}{pad}"),
                        Align::Right => format!("{pad}{c}"),
                    }
                })
                .collect();
            padded.join("  ").trim_end().to_string() + "\n"
        };
        let rule = widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  ") + "\n";
        let mut out = line(&self.header) + &rule;
        for (i, row) in self.rows.iter().enumerate() {
            if self.rules.contains(&i) {
                out.push_str(&rule);
            }
            out.push_str(&line(row));
        }
        out
    }
}

/// Display width: characters, which is right for the text the CLI prints (no wide glyphs).
fn width(s: &str) -> usize {
    s.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_and_rules() {
        let mut t = Table::new(["name", "amount"]).right_from(1);
        t.row(["a", "1.5"]);
        t.row(["longer", "10"]);
        t.rule();
        t.row(["TOTAL", "11.5"]);
        assert_eq!(
            t.render(),
            "name    amount\n------  ------\na          1.5\nlonger      10\n------  ------\nTOTAL     11.5\n"
        );
    }
}
