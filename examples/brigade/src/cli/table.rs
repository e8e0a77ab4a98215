//! Human-readable output of `brigade processor ...`: a table of processors, and one
//! processor's status as aligned lines.

use serde_json::Value;

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

fn counter(v: &Value, key: &str) -> String {
    v.get("counters")
        .and_then(|c| c.get(key))
        .map(|n| n.to_string())
        .unwrap_or_else(|| "-".into())
}

/// Formats rows as a table with a header, columns padded to their widest cell.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| -> String {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}

/// The table of `brigade processor list`.
pub fn list(list: &Value) -> String {
    let rows: Vec<Vec<String>> = list
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|p| {
                    vec![
                        text(p, "name"),
                        text(p, "state"),
                        counter(p, "consumed"),
                        counter(p, "produced"),
                        counter(p, "failed"),
                        counter(p, "in_flight"),
                        p.get("recent_errors")
                            .and_then(Value::as_array)
                            .map(|e| e.len().to_string())
                            .unwrap_or_else(|| "0".into()),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    if rows.is_empty() {
        return "no processors\n".into();
    }
    render(
        &[
            "NAME",
            "STATE",
            "CONSUMED",
            "PRODUCED",
            "FAILED",
            "IN FLIGHT",
            "ERRORS",
        ],
        &rows,
    )
}

/// The lines of `brigade processor status` (and of add, update, start, stop).
pub fn status(p: &Value) -> String {
    let mut out = String::new();
    let config = p.get("config");
    let field = |key: &str| config.map(|c| text(c, key)).unwrap_or_else(|| "-".into());
    let runner = match (
        config.and_then(|c| c.get("command")),
        config.and_then(|c| c.get("docker")),
    ) {
        (Some(Value::String(c)), _) => format!("command: {c}"),
        (_, Some(Value::String(d))) => format!("docker: {d}"),
        _ => "-".into(),
    };
    let rows = [
        ("name", text(p, "name")),
        ("state", text(p, "state")),
        ("framework id", text(p, "framework_id")),
        ("origin", text(p, "origin")),
        ("input", field("input")),
        ("output", field("output")),
        ("error", field("error")),
        ("runs", runner),
        ("consumed", counter(p, "consumed")),
        ("produced", counter(p, "produced")),
        ("failed", counter(p, "failed")),
        ("retries", counter(p, "retries")),
        ("duplicated", counter(p, "duplicated")),
        ("in flight", counter(p, "in_flight")),
    ];
    for (key, value) in rows {
        out.push_str(&format!("{key:<13} {value}\n"));
    }
    if let Some(problems) = p.get("validation_errors").and_then(Value::as_array) {
        for e in problems {
            out.push_str(&format!(
                "invalid       {}: {}\n",
                text(e, "field"),
                text(e, "message")
            ));
        }
    }
    if let Some(errors) = p.get("recent_errors").and_then(Value::as_array) {
        for e in errors.iter().rev().take(5) {
            out.push_str(&format!(
                "recent error  {} {}\n",
                text(e, "source"),
                text(e, "message")
            ));
        }
    }
    out
}
