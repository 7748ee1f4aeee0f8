//! How the client prints: aligned tables and `field  value` lists for people, the API's JSON
//! unchanged for scripts (`--json`).

use std::io::Write;

use serde_json::Value;

/// Prints `value` as one line of JSON.
pub fn json(value: &Value) -> anyhow::Result<()> {
    line(&serde_json::to_string(value)?)
}

/// Prints one line to stdout.
pub fn line(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()?;
    Ok(())
}

/// A field of an object as text: strings bare, `null` as `-`, lists joined with commas.
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) => text.clone(),
        Value::Array(items) if items.is_empty() => "-".to_owned(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// `text`, cut to `width` characters with an ellipsis.
pub fn cut(value: &Value, width: usize) -> String {
    let full = text(value);
    if full.chars().count() <= width {
        full
    } else {
        let mut short: String = full.chars().take(width.saturating_sub(1)).collect();
        short.push('…');
        short
    }
}

/// The named fields of an object, one per line: `name  value`.
pub fn fields(object: &Value, names: &[&str]) -> String {
    let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
    names
        .iter()
        .filter(|name| object.get(**name).is_some())
        .map(|name| format!("{name:<width$}  {}", text(&object[*name])))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Rows under a header, each column as wide as its widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let render = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        cells
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                if i == last {
                    (*cell).to_owned()
                } else {
                    let pad = widths[i] - cell.chars().count();
                    format!("{cell}{}", " ".repeat(pad))
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let mut lines = vec![render(header.to_vec())];
    lines.extend(
        rows.iter()
            .map(|row| render(row.iter().map(String::as_str).collect())),
    );
    lines.join("\n")
}

/// A page of a list as a table, with a hint for the next page.
pub fn page(
    list: &Value,
    header: &[&str],
    row: impl Fn(&Value) -> Vec<String>,
) -> anyhow::Result<()> {
    let items = list["data"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return line("(none)");
    }
    let rows: Vec<Vec<String>> = items.iter().map(row).collect();
    line(&table(header, &rows))?;
    if let Some(cursor) = list["next_cursor"].as_str() {
        line(&format!("more: --cursor {cursor}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_their_columns() {
        let rendered = table(
            &["id", "slug", "clicks"],
            &[
                vec!["lnk_1".into(), "summer-sale".into(), "12".into()],
                vec!["lnk_22".into(), "x".into(), "0".into()],
            ],
        );
        assert_eq!(
            rendered,
            "id      slug         clicks\nlnk_1   summer-sale  12\nlnk_22  x            0"
        );
    }

    #[test]
    fn values_print_plainly_and_long_ones_are_cut() {
        assert_eq!(text(&json!(null)), "-");
        assert_eq!(text(&json!(["a", "b"])), "a,b");
        assert_eq!(text(&json!(true)), "true");
        assert_eq!(cut(&json!("abcdefgh"), 5), "abcd…");
        assert_eq!(
            fields(
                &json!({"id": "x", "enabled": false}),
                &["id", "enabled", "absent"]
            ),
            "id       x\nenabled  false"
        );
    }
}
