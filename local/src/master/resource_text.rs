//! Resources written as Mesos writes them in its texts (`operator<<` of `Resource` and
//! `Resources`): `cpus(allocated: *):1000; mem(allocated: *):64; ports(allocated:
//! *):[31000-31010, 31020-31030]`, with the reservations as `(reservations: [(STATIC,role)])`.
//! Used by the master's task errors (`Total resources ... required by task and its executor is
//! more than available ...`).

use mesos_sdk::v1::resource::reservation_info;
use mesos_sdk::v1::{Resource, value};

/// One scalar as C++'s default stream formatting writes a double (up to 6 significant digits,
/// no trailing zeros).
fn scalar_text(value: f64) -> String {
    if value == value.trunc() && value.abs() < 1e6 {
        return format!("{value:.0}");
    }
    let digits = 6 - 1 - (value.abs().log10().floor() as i32);
    let text = format!("{:.*}", digits.clamp(0, 16) as usize, value);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// One resource, with `allocated: <role>` when `allocation_role` is given.
fn resource_text(resource: &Resource, allocation_role: Option<&str>) -> String {
    let mut out = resource.name.clone();
    let role = resource
        .allocation_info
        .as_ref()
        .and_then(|a| a.role.as_deref())
        .or(allocation_role);
    if let Some(role) = role {
        out.push_str(&format!("(allocated: {role})"));
    }
    if !resource.reservations.is_empty() {
        let stack: Vec<String> = resource
            .reservations
            .iter()
            .map(|r| {
                let kind = r
                    .r#type
                    .and_then(|t| reservation_info::Type::try_from(t).ok())
                    .map_or("UNKNOWN", |t| t.as_str_name());
                let mut item = format!("({kind},{}", r.role.as_deref().unwrap_or("*"));
                if let Some(principal) = &r.principal {
                    item.push_str(&format!(",{principal}"));
                }
                item.push(')');
                item
            })
            .collect();
        out.push_str(&format!("(reservations: [{}])", stack.join(", ")));
    }
    out.push(':');
    match value::Type::try_from(resource.r#type) {
        Ok(value::Type::Scalar) => {
            out.push_str(&scalar_text(
                resource.scalar.as_ref().map_or(0.0, |s| s.value),
            ));
        }
        Ok(value::Type::Ranges) => {
            let ranges: Vec<String> = resource
                .ranges
                .iter()
                .flat_map(|r| &r.range)
                .map(|r| format!("{}-{}", r.begin, r.end))
                .collect();
            out.push_str(&format!("[{}]", ranges.join(", ")));
        }
        Ok(value::Type::Set) => {
            let items = resource
                .set
                .as_ref()
                .map(|s| s.item.join(", "))
                .unwrap_or_default();
            out.push_str(&format!("{{{items}}}"));
        }
        _ => {}
    }
    out
}

/// The role resources a task uses are allocated to: their `allocation_info` (MULTI_ROLE
/// frameworks), else `framework_roles`' first (the master allocates to the framework's role).
pub(crate) fn allocation_role(task_resources: &[Resource], framework_roles: &[String]) -> String {
    task_resources
        .iter()
        .find_map(|r| r.allocation_info.as_ref().and_then(|a| a.role.clone()))
        .or_else(|| framework_roles.first().cloned())
        .unwrap_or_else(|| "*".to_string())
}

/// Resources joined with `; `, each allocated to `allocation_role` unless it says otherwise.
pub(crate) fn resources_text(resources: &[Resource], allocation_role: Option<&str>) -> String {
    resources
        .iter()
        .map(|r| resource_text(r, allocation_role))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_sdk::resourcemgr::parse_resources;

    #[test]
    fn resources_are_written_as_mesos_writes_them() {
        let resources =
            parse_resources("cpus:1000;mem:64;ports:[31000-31010,31020-31030]").unwrap();
        assert_eq!(
            resources_text(&resources, Some("*")),
            "cpus(allocated: *):1000; mem(allocated: *):64; ports(allocated: *):[31000-31010, 31020-31030]"
        );
        let resources = parse_resources("cpus:0.5;disk:1.25").unwrap();
        assert_eq!(resources_text(&resources, None), "cpus:0.5; disk:1.25");
        assert_eq!(scalar_text(1234.5678), "1234.57");
        assert_eq!(scalar_text(0.1), "0.1");
    }
}
