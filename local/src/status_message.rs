//! Bounds the `message` of task status updates made by the master and the agents.
//!
//! Messages quote what a framework sent (a command line, an id, a URI) or what a process
//! reported, so an unbounded one can carry megabytes into every update, retry, checkpoint and
//! `/state` answer. Mesos sets no explicit limit; a production framework reads a few lines at
//! most, so messages are cut to [`MAX_STATUS_MESSAGE`] bytes (at a character boundary) and end
//! with a marker saying how much was cut.

/// Longest status message kept, in bytes, marker included.
pub const MAX_STATUS_MESSAGE: usize = 4096;

/// `message` itself when it fits in [`MAX_STATUS_MESSAGE`] bytes, else its beginning followed by
/// ` ... [N bytes truncated]`.
pub fn bounded(message: String) -> String {
    if message.len() <= MAX_STATUS_MESSAGE {
        return message;
    }
    // The marker's own length depends on N; a budget of 64 bytes covers any N.
    let mut cut = MAX_STATUS_MESSAGE - 64;
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{} ... [{} bytes truncated]",
        &message[..cut],
        message.len() - cut
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_messages_are_kept_and_long_ones_cut_with_a_marker() {
        assert_eq!(bounded("short".into()), "short");
        let exact = "x".repeat(MAX_STATUS_MESSAGE);
        assert_eq!(bounded(exact.clone()), exact);
        let long = "é".repeat(1 << 19);
        let cut = bounded(long.clone());
        assert!(cut.len() <= MAX_STATUS_MESSAGE, "{}", cut.len());
        assert!(cut.ends_with(" bytes truncated]"), "{cut}");
        assert!(long.starts_with(cut.split(" ... [").next().unwrap()));
    }
}
