//! The key search against restic 0.14's rules, on key files made here with cheap scrypt
//! parameters (the real restic's are checked in `tests/validate_damage.rs`).

use super::*;
use crate::restic::tests::{MASTER_JSON, cheap_key_file};

fn ids(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("{i:02x}{}", "0".repeat(62)))
        .collect()
}

#[test]
fn at_most_twenty_names_in_listing_order_and_only_ids_are_tried() {
    let all = ids(25);
    let plan = Plan::new(&all, None);
    assert_eq!(plan.listed.len(), 20);
    assert_eq!(plan.listed[0], all[0]);
    assert_eq!(plan.listed[19], all[19]);
    assert!(plan.limited);
    assert_eq!(plan.hint, HintUse::None);

    // A name that is not an id still counts towards the 20.
    let mut names = vec![format!("{}.bak", all[0])];
    names.extend(all[1..21].iter().cloned());
    let plan = Plan::new(&names, None);
    assert_eq!(plan.skipped, vec![names[0].clone()]);
    assert_eq!(plan.listed.len(), 19);
    assert_eq!(plan.listed[18], all[19]);
    assert!(plan.limited);
    // Upper-case hex is an id to restic.
    assert!(restic::is_id(&all[0].to_uppercase()));
}

#[test]
fn a_hint_that_names_one_name_goes_first() {
    let all = ids(25);
    let plan = Plan::new(&all, Some("18"));
    assert_eq!(plan.hint, HintUse::Found);
    assert_eq!(plan.hinted.as_ref(), Some(&all[0x18]));
    assert_eq!(plan.files().len(), 21);
    assert_eq!(Plan::new(&all, Some("0")).hint, HintUse::Ambiguous);
    assert_eq!(Plan::new(&all, Some("ff")).hint, HintUse::NoMatch);
    // A hinted key among the first 20 is read once.
    let plan = Plan::new(&all, Some("03"));
    assert_eq!(plan.files().len(), 20);
    assert_eq!(plan.files()[0], &all[3]);
    // restic's Find matches any listed name, an id or not.
    let names = vec![format!("{}.bak", all[0]), all[1].clone()];
    let plan = Plan::new(&names, Some(&names[0][..10]));
    assert_eq!(plan.hinted.as_ref(), Some(&names[0]));
}

fn files(entries: &[(&String, Option<Vec<u8>>)]) -> HashMap<String, Option<Bytes>> {
    entries
        .iter()
        .map(|(n, b)| ((*n).clone(), b.clone().map(Bytes::from)))
        .collect()
}

#[test]
fn a_damaged_key_before_the_right_one_stops_the_search_as_in_restic() {
    let all = ids(3);
    let pw = SecretValue::new("right".into());
    let right = cheap_key_file("right", MASTER_JSON);
    let other = cheap_key_file("other", MASTER_JSON);
    let outcome = |first: Option<Vec<u8>>, hint: Option<&str>| {
        let plan = Plan::new(&all, hint);
        let f = files(&[
            (&all[0], first),
            (&all[1], Some(other.clone())),
            (&all[2], Some(right.clone())),
        ]);
        search(&plan, &f, &pw)
    };
    // A wrong-password key is passed over.
    assert!(
        matches!(outcome(Some(other.clone()), None), Search::Opened { id, .. } if id == all[2])
    );
    for damaged in [
        b"{}".to_vec(),
        Vec::new(),
        b"not json".to_vec(),
        br#"{"kdf":"scrypt","N":1024,"r":8,"p":1,"salt":"AAAA","data":""}"#.to_vec(),
    ] {
        assert!(
            matches!(outcome(Some(damaged.clone()), None), Search::Stopped { ref id, .. } if *id == all[0]),
            "{}",
            String::from_utf8_lossy(&damaged)
        );
        // A hint to the right key goes round it.
        assert!(
            matches!(outcome(Some(damaged), Some("02")), Search::Opened { id, .. } if id == all[2])
        );
    }
    // Listed but not readable (a folder named like a key).
    assert!(matches!(outcome(None, None), Search::Stopped { .. }));
    // A damaged hinted key is passed over by the hint, and stops the listing.
    assert!(matches!(
        outcome(Some(b"{}".to_vec()), Some("00")),
        Search::Stopped { .. }
    ));
}

#[test]
fn a_renamed_key_is_not_found_unless_the_hint_names_it() {
    let names = vec![format!("{}.bak", ids(1)[0])];
    let pw = SecretValue::new("right".into());
    let f = files(&[(&names[0], Some(cheap_key_file("right", MASTER_JSON)))]);
    assert!(matches!(
        search(&Plan::new(&names, None), &f, &pw),
        Search::NotFound
    ));
    assert!(matches!(
        search(&Plan::new(&names, Some("00")), &f, &pw),
        Search::Opened { .. }
    ));
}
