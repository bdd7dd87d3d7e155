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

/// Asserts that `mine` groups `lines` exactly as `expected` does: lines
/// with the same letter share a template, lines with different letters
/// do not.
fn assert_groups(lines: &[&str], expected: &str) {
    let mining = mine(lines, &Config::default());
    let expected = expected.as_bytes();
    for i in 0..lines.len() {
        for j in 0..lines.len() {
            let same = mining.assignments[i] == mining.assignments[j];
            assert_eq!(
                same,
                expected[i] == expected[j],
                "lines {i} and {j}: {:?}\n{}\n{}",
                texts(&mining),
                lines[i],
                lines[j]
            );
        }
    }
}

// Self-made lines in the shapes of formats the Loghub 2k tuning set does
// not hold: they guard against rules that only fit the systems tuned on.

#[test]
fn groups_syslog_sessions_whatever_the_user() {
    assert_groups(
        &[
            "Jun 15 04:06:18 combo su(pam_unix)[21416]: session opened for user cyrus by (uid=0)",
            "Jun 15 04:06:19 combo su(pam_unix)[21416]: session closed for user cyrus",
            "Jun 15 04:12:42 combo su(pam_unix)[2190]: session opened for user news by (uid=0)",
            "Jun 15 04:12:43 combo su(pam_unix)[2190]: session closed for user news",
            "Jun 16 04:10:22 combo su(pam_unix)[9110]: session opened for user cyrus by (uid=0)",
            "Jun 16 04:10:23 combo su(pam_unix)[9110]: session closed for user cyrus",
            "Jun 16 04:16:11 combo su(pam_unix)[9800]: session opened for user news by (uid=0)",
            "Jun 16 04:16:12 combo su(pam_unix)[9800]: session closed for user news",
        ],
        "abababab",
    );
}

#[test]
fn groups_connections_whose_message_holds_a_date_in_words() {
    assert_groups(
        &[
            "Jun 17 07:07:00 combo ftpd[29504]: connection from 24.54.76.216 (24-54-76-216.example.net) at Fri Jun 17 07:07:00 2005",
            "Jun 17 07:07:00 combo ftpd[29505]: connection from 24.54.76.216 (24-54-76-216.example.net) at Fri Jun 17 07:07:00 2005",
            "Jun 18 02:08:10 combo ftpd[31272]: connection from 222.33.90.199 () at Sat Jun 18 02:08:10 2005",
            "Jun 18 02:08:10 combo ftpd[31273]: connection from 222.33.90.199 () at Sat Jun 18 02:08:10 2005",
            "Jul  1 00:21:29 combo ftpd[4424]: connection from 211.72.151.162 () at Fri Jul  1 00:21:29 2005",
            "Jul  1 00:21:29 combo ftpd[4425]: connection from 211.72.151.162 () at Fri Jul  1 00:21:29 2005",
            "Jul  1 00:21:30 combo sshd(pam_unix)[4431]: check pass; user unknown",
            "Jul  1 00:21:31 combo sshd(pam_unix)[4432]: check pass; user unknown",
        ],
        "aaaaaabb",
    );
}

#[test]
fn groups_key_value_settings_whatever_their_values() {
    assert_groups(
        &[
            "2016-09-28 04:30:31, Info                  CBS    Appl: detect Parent, Package: Package_1_for_KB2533552~31bf3856ad364e35~amd64~~6.1.1.0, Parent: Microsoft-Windows-Client-Package~31bf3856ad364e35~amd64~~6.1.7601.17514, Disposition = Detect, VersionComp: EQ, ServiceComp: GE, Exist: present",
            "2016-09-28 04:30:31, Info                  CBS    Appl: detect Parent, Package: Package_2_for_KB2533552~31bf3856ad364e35~amd64~~6.1.1.0, Parent: Microsoft-Windows-Client-Package~31bf3856ad364e35~amd64~~6.1.7601.17514, Disposition = Detect, VersionComp: EQ, ServiceComp: EQ, Exist: absent",
            "2016-09-28 04:30:32, Info                  CBS    Appl: detect Parent, Package: Package_3_for_KB2533552~31bf3856ad364e35~amd64~~6.1.1.0, Parent: Microsoft-Windows-Client-Package~31bf3856ad364e35~amd64~~6.1.7601.17514, Disposition = Detect, VersionComp: GE, ServiceComp: GE, Exist: present",
            "2016-09-28 04:30:32, Info                  CBS    Appl: detect Parent, Package: Package_4_for_KB2533552~31bf3856ad364e35~amd64~~6.1.1.0, Parent: Microsoft-Windows-Client-Package~31bf3856ad364e35~amd64~~6.1.7601.17514, Disposition = Detect, VersionComp: GE, ServiceComp: EQ, Exist: absent",
            "2016-09-28 04:30:33, Info                  CBS    Session: 30546173_4261722401 initialized by client WindowsUpdateAgent.",
            "2016-09-28 04:30:34, Info                  CBS    Session: 30546174_4261722402 initialized by client WindowsUpdateAgent.",
        ],
        "aaaabb",
    );
}

#[test]
fn groups_logcat_lines_by_message_not_by_pid_or_tag_values() {
    assert_groups(
        &[
            "03-17 16:13:38.811  1702  8671 I PowerManagerService: acquire lock=233570404, flags=0x1, tag=\"View Lock\", name=com.android.systemui, uid=10037, pid=2227",
            "03-17 16:13:38.819  1702  2113 I PowerManagerService: acquire lock=166121161, flags=0x1, tag=\"View Lock\", name=com.tencent.mm, uid=10120, pid=9310",
            "03-17 16:13:38.839  1702  8671 I PowerManagerService: release lock=233570404, flags=0x1, tag=\"View Lock\", name=com.android.systemui, uid=10037, pid=2227",
            "03-17 16:13:38.901  1702  2113 I PowerManagerService: release lock=166121161, flags=0x1, tag=\"View Lock\", name=com.tencent.mm, uid=10120, pid=9310",
            "03-17 16:13:39.022  2227  2227 D StatusBar: disable<e i a s b h r c s > disable2<q i n >",
            "03-17 16:13:40.022  2227  2227 D StatusBar: disable<e i a s b h r c s > disable2<q i n >",
        ],
        "aabbcc",
    );
}

#[test]
fn groups_supercomputer_ras_events_across_nodes() {
    assert_groups(
        &[
            "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.363779 R02-M1-N0-C:J12-U11 RAS KERNEL INFO instruction cache parity error corrected",
            "- 1117838573 2005.06.03 R07-M0-NC-C:J03-U01 2005-06-03-15.42.53.276129 R07-M0-NC-C:J03-U01 RAS KERNEL INFO instruction cache parity error corrected",
            "- 1117869872 2005.06.04 R23-M1-N8-I:J18-U11 2005-06-04-00.24.32.398284 R23-M1-N8-I:J18-U11 RAS KERNEL INFO 63543 double-hummer alignment exceptions",
            "- 1117869876 2005.06.04 R24-M0-N1-C:J13-U11 2005-06-04-00.24.36.222560 R24-M0-N1-C:J13-U11 RAS KERNEL INFO 162 double-hummer alignment exceptions",
            "- 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond(pam_unix)[2915]: session closed for user root",
            "- 1131566462 2005.11.09 dn30 Nov 9 12:01:02 dn30/dn30 crond(pam_unix)[2916]: session closed for user root",
        ],
        "aabbcc",
    );
}

#[test]
fn groups_nova_requests_by_method_and_path_shape() {
    assert_groups(
        &[
            "nova-api.log.1.2017-05-16_13:53:08 2017-05-16 00:00:00.008 25746 INFO nova.osapi_compute.wsgi.server [req-38101a0b-2096-447d-96ea-a692162415ae 113d3a99c3da401fbd62cc2caa5b96d2 54fadb412c4e40cdbaed9335e4c35a9e - - -] 10.11.10.1 \"GET /v2/54fadb412c4e40cdbaed9335e4c35a9e/servers/detail HTTP/1.1\" status: 200 len: 1893 time: 0.2477829",
            "nova-api.log.1.2017-05-16_13:53:08 2017-05-16 00:00:01.264 25746 INFO nova.osapi_compute.wsgi.server [req-9bc36dd9-91c5-4314-898a-47625eb93b09 113d3a99c3da401fbd62cc2caa5b96d2 54fadb412c4e40cdbaed9335e4c35a9e - - -] 10.11.10.1 \"GET /v2/54fadb412c4e40cdbaed9335e4c35a9e/servers/detail HTTP/1.1\" status: 200 len: 1893 time: 0.2577119",
            "nova-compute.log.1.2017-05-16_13:55:31 2017-05-16 00:00:04.500 2931 INFO nova.compute.manager [req-3ea4052c-895d-4b64-9e2d-04d64c4d94ab - - - - -] [instance: b9000564-fe1a-409b-b8cc-1e88b294cd1d] VM Started (Lifecycle Event)",
            "nova-compute.log.1.2017-05-16_13:55:31 2017-05-16 00:00:09.500 2931 INFO nova.compute.manager [req-5a0e1b2c-895d-4b64-9e2d-04d64c4d94ab - - - - -] [instance: 0ee5cd52-1b0a-4d6b-9d0d-1e88b294cd1d] VM Started (Lifecycle Event)",
        ],
        "aabb",
    );
}

#[test]
fn groups_mac_kernel_lines_across_hosts() {
    assert_groups(
        &[
            "Jul  1 09:00:55 calvisitor-10-105-160-95 kernel[0]: AppleThunderboltNHIType2::prePCIWake - power up complete - took 2 us",
            "Jul  1 09:01:05 calvisitor-10-105-160-95 kernel[0]: AppleThunderboltNHIType2::prePCIWake - power up complete - took 1 us",
            "Jul  2 11:12:06 authorMacBook-Pro kernel[0]: AppleThunderboltNHIType2::prePCIWake - power up complete - took 3 us",
            "Jul  1 09:01:06 calvisitor-10-105-160-95 kernel[0]: IOThunderboltSwitch<0>(0x0)::listenerCallback - Thunderbolt HPD packet for route = 0x0 port = 11 unplug = 0",
            "Jul  1 09:02:26 calvisitor-10-105-160-95 kernel[0]: IOThunderboltSwitch<0>(0x0)::listenerCallback - Thunderbolt HPD packet for route = 0x0 port = 12 unplug = 0",
        ],
        "aaabb",
    );
}

#[test]
fn groups_hpc_state_changes_across_nodes() {
    assert_groups(
        &[
            "134681 node-246 unix.hw state_change.unavailable 1077804742 1 Component State Change: Component \\042alt0\\042 is in the unavailable state (HWID=1973)",
            "134682 node-109 unix.hw state_change.unavailable 1077804743 1 Component State Change: Component \\042alt0\\042 is in the unavailable state (HWID=3188)",
            "2557 node-70 node status 1074119817 1 running",
            "2558 node-71 node status 1074119818 1 running",
        ],
        "aabb",
    );
}
