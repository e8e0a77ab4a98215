//! Validation of the ids that name directories on an agent (task, executor, framework and
//! container ids), with the rules and messages of Mesos' `validateID`: an id must not be empty,
//! must not be longer than `NAME_MAX` (255) bytes, must not be `.` or `..`, and must not contain
//! a slash, a backslash or a control character.
//!
//! The master checks these on SUBSCRIBE (framework ids) and on LAUNCH / LAUNCH_GROUP (task and
//! executor ids, answered with TASK_ERROR / REASON_TASK_INVALID); the agents check them again
//! before any sandbox path is built from them, so that no id can place a sandbox outside the
//! agent's work directory.

use mesos_sdk::v1::{ContainerId, ExecutorInfo, FrameworkInfo, TaskInfo};

/// Longest valid id in bytes (`NAME_MAX` on Linux: one path component).
pub const MAX_ID_LENGTH: usize = 255;

/// Why an id is invalid; the text is Mesos' message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The id is the empty string.
    #[error("ID must not be empty")]
    Empty,
    /// The id is longer than [`MAX_ID_LENGTH`] bytes.
    #[error("ID must not be greater than {MAX_ID_LENGTH} characters")]
    TooLong,
    /// The id is exactly `.` or `..`.
    #[error("'{0}' is disallowed")]
    Disallowed(String),
    /// The id contains `/`, `\` or a control character.
    #[error("'{0}' contains invalid characters")]
    InvalidCharacters(String),
}

/// Checks one id as Mesos' `validateID` does.
pub fn validate_id(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    if id.len() > MAX_ID_LENGTH {
        return Err(IdError::TooLong);
    }
    if id == "." || id == ".." {
        return Err(IdError::Disallowed(id.to_string()));
    }
    if id
        .bytes()
        .any(|b| b.is_ascii_control() || b == b'/' || b == b'\\')
    {
        return Err(IdError::InvalidCharacters(id.to_string()));
    }
    Ok(())
}

/// Checks a task's id and, when it names one, its executor's id (in that order, as Mesos'
/// task validation does).
pub fn validate_task_ids(task: &TaskInfo) -> Result<(), IdError> {
    validate_id(&task.task_id.value)?;
    if let Some(executor) = &task.executor {
        validate_executor_id(executor)?;
    }
    Ok(())
}

/// Checks an executor's id.
pub fn validate_executor_id(executor: &ExecutorInfo) -> Result<(), IdError> {
    validate_id(&executor.executor_id.value)
}

/// Checks a framework's id when it has a non-empty one (a framework without an id gets one from
/// the master), as Mesos' framework validation does.
pub fn validate_framework_id(info: &FrameworkInfo) -> Result<(), IdError> {
    match info.id.as_ref() {
        Some(id) if !id.value.is_empty() => validate_id(&id.value),
        _ => Ok(()),
    }
}

/// Checks a container id and each of its parents.
pub fn validate_container_id(container: &ContainerId) -> Result<(), IdError> {
    let mut current = Some(container);
    while let Some(id) = current {
        validate_id(&id.value)?;
        current = id.parent.as_deref();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mesos_rules_and_messages() {
        assert_eq!(validate_id("task-1.a_b:c@d"), Ok(()));
        assert_eq!(validate_id("é☃"), Ok(()));
        assert_eq!(validate_id(&"x".repeat(255)), Ok(()));
        assert_eq!(
            validate_id("").unwrap_err().to_string(),
            "ID must not be empty"
        );
        assert_eq!(
            validate_id(&"x".repeat(5000)).unwrap_err().to_string(),
            "ID must not be greater than 255 characters"
        );
        assert_eq!(
            validate_id(".").unwrap_err().to_string(),
            "'.' is disallowed"
        );
        assert_eq!(
            validate_id("..").unwrap_err().to_string(),
            "'..' is disallowed"
        );
        for bad in ["a/b", "../../../x", "a\\b", "a\nb", "a\u{7f}", "\0"] {
            assert_eq!(
                validate_id(bad).unwrap_err(),
                IdError::InvalidCharacters(bad.to_string()),
                "{bad:?}"
            );
        }
        assert_eq!(validate_id("..."), Ok(()));
    }

    #[test]
    fn container_ids_are_checked_with_their_parents() {
        let child = ContainerId {
            value: "child".into(),
            parent: Some(Box::new(ContainerId {
                value: "a/b".into(),
                parent: None,
            })),
        };
        assert!(validate_container_id(&child).is_err());
    }
}
