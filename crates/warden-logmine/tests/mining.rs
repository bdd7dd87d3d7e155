//! Behaviour of the public API on small hand-written logs.

use warden_logmine::{Config, Miner, Mining, TemplateId, mine};

fn texts(mining: &Mining) -> Vec<&str> {
    mining.templates.iter().map(|t| t.text.as_str()).collect()
}

#[test]
fn groups_lines_that_differ_only_in_parameters() {
    let mut miner = Miner::default();
    let a = miner.add("Served block blk_1 to 10.0.0.1");
    let b = miner.add("Served block blk_-2 to 10.0.0.2");
    assert_eq!(a, b);
    let template = miner.template(a).unwrap();
    assert_eq!(template.text, "Served block blk_<*> to <*>");
    assert_eq!(template.count, 2);
    assert_eq!(
        template.params,
        vec![4],
        "only whole-token parameters are slots"
    );
}

#[test]
fn lines_with_different_token_counts_never_share_an_online_template() {
    let mut miner = Miner::default();
    let a = miner.add("job started on node");
    let b = miner.add("job started on node quickly");
    assert_ne!(a, b);
}

#[test]
fn the_similarity_threshold_decides_whether_a_line_joins() {
    let lines = ["open file alpha now", "open file beta now"];
    let mut loose = Miner::new(Config {
        similarity: 0.5,
        ..Config::default()
    });
    let mut strict = Miner::new(Config {
        similarity: 0.9,
        ..Config::default()
    });
    let loose_ids: Vec<TemplateId> = lines.iter().map(|l| loose.add(l)).collect();
    let strict_ids: Vec<TemplateId> = lines.iter().map(|l| strict.add(l)).collect();
    assert_eq!(loose_ids[0], loose_ids[1]);
    assert_eq!(
        loose.template(loose_ids[0]).unwrap().text,
        "open file <*> now"
    );
    assert_ne!(strict_ids[0], strict_ids[1]);
}

#[test]
fn leading_tokens_route_lines_to_separate_subtrees() {
    let mut miner = Miner::default();
    let a = miner.add("alpha x y z");
    let b = miner.add("beta x y z");
    assert_ne!(a, b, "different first tokens never meet in the tree");
}

#[test]
fn tokens_past_max_children_share_the_wildcard_child() {
    let mut miner = Miner::new(Config {
        max_children: 2,
        ..Config::default()
    });
    let alpha = miner.add("alpha x y z");
    let beta = miner.add("beta x y z");
    let gamma = miner.add("gamma x y z");
    assert_ne!(alpha, beta);
    assert_eq!(beta, gamma);
    assert_eq!(miner.template(beta).unwrap().text, "<*> x y z");
}

#[test]
fn assignments_follow_input_order_and_use_final_ids() {
    let lines = [
        "Disk of node sda is full",
        "Connected to 10.0.0.1 in 5 ms",
        "Connected to 10.0.0.2 in 7 ms",
        "Disk of node sdb is full",
        "Disk of node sdc is full",
        "Disk of node sdd is full",
        "Disk of node sde is full",
        "Disk of node sdf is full",
    ];
    let mining = mine(&lines, &Config::default());
    assert_eq!(
        texts(&mining),
        ["Disk of node <*> is full", "Connected to <*> in <*>"]
    );
    let disk = mining.templates[0].id;
    let connected = mining.templates[1].id;
    assert_eq!(
        mining.assignments,
        [disk, connected, connected, disk, disk, disk, disk, disk]
    );
    assert_eq!(mining.templates[0].count, 6);
    assert_eq!(mining.template(connected).unwrap().count, 2);
}

#[test]
fn merges_templates_whose_parameters_span_different_token_counts() {
    let lines = [
        "ask 10.0.0.1:50010 to delete blk_1",
        "ask 10.0.0.2:50010 to delete blk_1 blk_2 blk_3",
        "ask 10.0.0.3:50010 to delete blk_4 blk_5",
        "close, 12 bytes sent, 40 bytes received, lifetime 00:01",
        "close, 1190 bytes (1.16 KB) sent, 40 bytes received, lifetime <1 sec",
    ];
    let mining = mine(&lines, &Config::default());
    assert_eq!(mining.templates.len(), 2, "{:?}", texts(&mining));
    assert_eq!(mining.assignments[0], mining.assignments[2]);
    assert_eq!(mining.assignments[3], mining.assignments[4]);
}

#[test]
fn splits_a_wildcard_that_hides_a_few_recurring_words() {
    let lines = [
        "Block rdd_1 stored as bytes in memory",
        "Block rdd_2 stored as values in memory",
        "Block rdd_3 stored as bytes in memory",
        "Block rdd_4 stored as values in memory",
    ];
    let mining = mine(&lines, &Config::default());
    assert_eq!(
        texts(&mining),
        [
            "Block rdd_<*> stored as bytes in memory",
            "Block rdd_<*> stored as values in memory"
        ]
    );
    let online = mine(
        &lines,
        &Config {
            refine: false,
            ..Config::default()
        },
    );
    assert_eq!(texts(&online), ["Block rdd_<*> stored as <*> in memory"]);
}

#[test]
fn keeps_a_word_seen_once_as_a_parameter() {
    let lines = [
        "Failed password for root from 10.0.0.1 port 22 ssh2",
        "Failed password for root from 10.0.0.2 port 23 ssh2",
        "Failed password for admin from 10.0.0.3 port 24 ssh2",
    ];
    let mining = mine(&lines, &Config::default());
    assert_eq!(
        texts(&mining),
        ["Failed password for <*> from <*> port <*> ssh2"]
    );
}

#[test]
fn flags_rare_templates() {
    let mut lines = vec!["heartbeat ok from node 7"; 1500];
    lines.push("kernel panic on node 7");
    let mining = mine(&lines, &Config::default());
    let rare: Vec<&str> = mining.rare().iter().map(|t| t.text.as_str()).collect();
    assert_eq!(rare, ["kernel panic on node <*>"]);
    let strict = mine(
        &lines,
        &Config {
            rare_fraction: 0.0,
            ..Config::default()
        },
    );
    assert_eq!(strict.rare().len(), 1, "a single line is always rare");
    let loose = mine(
        &lines,
        &Config {
            rare_fraction: 1.0,
            ..Config::default()
        },
    );
    assert_eq!(loose.rare().len(), 2);
}

#[test]
fn mining_is_deterministic() {
    let lines: Vec<String> = (0..300)
        .map(|i| match i % 3 {
            0 => format!("user u{} logged in from 10.0.{}.{}", i % 7, i % 5, i),
            1 => format!("request {i} took {} ms", i * 3),
            _ => format!("cache {} hit ratio {}.5", ["l1", "l2"][i % 2], i),
        })
        .collect();
    let first = mine(&lines, &Config::default());
    let second = mine(&lines, &Config::default());
    assert_eq!(first, second);
    assert_eq!(
        serde_json::to_string(&first).unwrap(),
        serde_json::to_string(&second).unwrap()
    );
}

#[test]
fn empty_input_gives_an_empty_mining() {
    let mining = mine::<&str>(&[], &Config::default());
    assert_eq!(mining, Mining::default());
    let mut miner = Miner::default();
    let id = miner.add("");
    assert_eq!(miner.template(id).unwrap().text, "");
}

#[test]
fn handles_unicode_lines() {
    let lines = [
        "用户 42 登录 成功 ✓",
        "用户 43 登录 成功 ✓",
        "Ошибка диска sda",
    ];
    let mining = mine(&lines, &Config::default());
    assert_eq!(texts(&mining), ["用户 <*> 登录 成功 ✓", "Ошибка диска sda"]);
}

#[test]
fn handles_a_very_long_line() {
    let line = |shift: usize| -> String {
        (0..50_000)
            .map(|i| format!("w{} {} ", i % 10, i + shift))
            .collect()
    };
    let lines = [line(0), line(1), "short line".to_owned()];
    let mining = mine(&lines, &Config::default());
    assert_eq!(mining.templates.len(), 2);
    assert_eq!(mining.assignments[0], mining.assignments[1]);
    assert_eq!(mining.templates[0].params.len(), 50_000);
}

#[test]
fn the_online_miner_and_unrefined_mine_agree() {
    let lines = [
        "Received block blk_1 of size 67108864 from /10.0.0.1",
        "Receiving block blk_2 src: /10.0.0.1:1 dest: /10.0.0.2:2",
        "Received block blk_3 of size 12 from /10.0.0.3",
    ];
    let mut miner = Miner::default();
    let online: Vec<TemplateId> = lines.iter().map(|l| miner.add(l)).collect();
    let mining = mine(
        &lines,
        &Config {
            refine: false,
            ..Config::default()
        },
    );
    assert_eq!(online, mining.assignments);
    assert_eq!(miner.templates().len(), mining.templates.len());
    assert_eq!(miner.lines(), 3);
}

#[test]
fn out_of_range_config_values_are_clamped() {
    let miner = Miner::new(Config {
        depth: 0,
        similarity: f64::NAN,
        max_children: 0,
        rare_fraction: 7.0,
        ..Config::default()
    });
    let config = miner.config();
    assert_eq!((config.depth, config.max_children), (3, 2));
    assert!((config.similarity - 0.5).abs() < f64::EPSILON);
    assert!((config.rare_fraction - 1.0).abs() < f64::EPSILON);
}

#[test]
fn config_and_mining_round_trip_through_json() {
    let config: Config =
        serde_json::from_str(r#"{"similarity": 0.7, "masking": {"paths": false}}"#).unwrap();
    assert!((config.similarity - 0.7).abs() < f64::EPSILON);
    assert!(!config.masking.paths && config.masking.numbers);
    assert!(serde_json::from_str::<Config>(r#"{"simmilarity": 0.7}"#).is_err());

    let mining = mine(&["a 1", "a 2"], &config);
    let json = serde_json::to_value(&mining).unwrap();
    assert_eq!(json["templates"][0]["text"], "a <*>");
    assert_eq!(json["assignments"], serde_json::json!([0, 0]));
    let back: Mining = serde_json::from_value(json).unwrap();
    assert_eq!(back, mining);
}
