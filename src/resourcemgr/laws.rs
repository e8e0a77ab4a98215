//! Property tests of the resource algebra's laws: `a + b - b == a` (for `b` whose ranges and
//! set items are disjoint from `a`'s; a range or set union forgets what overlapped),
//! `contains(a + b, a)`, `contains(a, a - b)`, flatten and unflatten by role, and that
//! validation accepts everything the parsers make.

use proptest::prelude::*;

use super::{Resources, parse_resources, validate_all};

/// `--resources` text whose ranges and set items come from the even (`half = 0`) or odd
/// (`half = 1`) blocks of ten, so that two texts of different halves never overlap there.
fn text(half: u64) -> impl Strategy<Value = String> {
    let role = prop_oneof![Just(""), Just("(a)"), Just("(b)")];
    let scalar = (
        prop_oneof![Just("cpus"), Just("mem"), Just("custom")],
        role.clone(),
        0u64..100_000,
    )
        .prop_map(|(name, role, v)| format!("{name}{role}:{}", v as f64 / 1000.0));
    let ports = (role.clone(), 0u64..20, 0u64..10).prop_map(move |(role, block, len)| {
        let begin = (block * 2 + half) * 10;
        format!("ports{role}:[{begin}-{}]", begin + len.min(9))
    });
    let items = (role, proptest::collection::vec(0u64..20, 1..4)).prop_map(move |(role, ids)| {
        let items: Vec<String> = ids.iter().map(|i| format!("x{}", i * 2 + half)).collect();
        format!("s{role}:{{{}}}", items.join(","))
    });
    proptest::collection::vec(prop_oneof![scalar, ports, items], 0..6).prop_map(|e| e.join(";"))
}

fn parsed(text: &str) -> Resources {
    Resources::from_slice(&parse_resources(text).unwrap_or_default())
}

fn sum(a: &Resources, b: &Resources) -> Resources {
    let mut s = a.clone();
    s.add_all(b.as_slice());
    s
}

proptest! {
    #[test]
    fn add_then_subtract_gives_back(a in text(0), b in text(1)) {
        let (a, b) = (parsed(&a), parsed(&b));
        let mut back = sum(&a, &b);
        back.subtract_all(b.as_slice());
        prop_assert!(back.same_as(&a), "{} vs {}", back, a);
    }

    #[test]
    fn a_sum_contains_its_parts(a in text(0), b in text(0)) {
        let (a, b) = (parsed(&a), parsed(&b));
        let s = sum(&a, &b);
        prop_assert!(s.contains(a.as_slice()));
        prop_assert!(s.contains(b.as_slice()));
        let mut d = a.clone();
        d.subtract_all(b.as_slice());
        prop_assert!(a.contains(d.as_slice()));
    }

    #[test]
    fn addition_commutes(a in text(0), b in text(1)) {
        let (a, b) = (parsed(&a), parsed(&b));
        prop_assert!(sum(&a, &b).same_as(&sum(&b, &a)));
    }

    #[test]
    fn flatten_and_unflatten_by_role(a in text(0), b in text(1)) {
        let (a, b) = (parsed(&a), parsed(&b));
        // The role groups add back up to the whole.
        let mut back = Resources::new();
        for group in a.by_role().values() {
            back.add_all(group.as_slice());
        }
        prop_assert!(back.same_as(&a));
        // Flattening is additive and loses no amount.
        prop_assert!(sum(&a, &b).flatten().same_as(&sum(&a.flatten(), &b.flatten())));
        prop_assert_eq!(a.flatten().scalar("cpus"), a.scalar("cpus"));
        // Unflatten to one role, flatten again: the same unreserved resources.
        let flat = a.flatten();
        let reserved = Resources::unflatten(&flat, "r");
        prop_assert!(reserved.flatten().same_as(&flat));
        prop_assert!(reserved.by_role().keys().all(|role| role == "r"));
    }

    #[test]
    fn parsed_resources_validate(a in text(0)) {
        prop_assert!(validate_all(parse_resources(&a).unwrap_or_default().as_slice()).is_ok());
    }
}
