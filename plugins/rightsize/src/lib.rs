//! `rightsize`: the cheapest Azure VM size that keeps p95 CPU and memory
//! under a headroom target, never below the observed memory peak.
//!
//! The size catalogue (`data/azure-vm-sizes.json`, built in) lists common
//! B, Dsv5, Dasv5, Esv5, Easv5 and Fsv2 sizes with vCPUs, memory and an
//! approximate Linux pay-as-you-go price for one region; its `source` field
//! says where the figures came from and how to verify them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use warden_pdk::{Context, Tool, ToolError, export_tool};

const CATALOGUE: &str = include_str!("../data/azure-vm-sizes.json");
const HOURS_PER_MONTH: f64 = 730.0;

/// The tool.
pub struct Rightsize;

/// Utilisation of the current VM and what headroom to keep.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Current size, e.g. `Standard_D8s_v5` (the `Standard_` prefix and case are optional).
    pub current_size: String,
    /// CPU use in percent of the current size's vCPUs (0..100).
    #[serde(default)]
    pub cpu_pct: Option<Vec<f64>>,
    /// CPU use in busy vCPUs (instead of `cpu_pct`).
    #[serde(default)]
    pub cpu_vcpus: Option<Vec<f64>>,
    /// Memory use in percent of the current size's memory (0..100).
    #[serde(default)]
    pub memory_pct: Option<Vec<f64>>,
    /// Memory use in GiB (instead of `memory_pct`).
    #[serde(default)]
    pub memory_gib: Option<Vec<f64>>,
    /// The p-th percentile of CPU and memory must stay under this percent of
    /// the new size (default 70).
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    pub target_pct: Option<f64>,
    /// Which percentile (default 95).
    #[serde(default)]
    #[schemars(range(min = 50, max = 100))]
    pub percentile: Option<f64>,
    /// The new size's memory must exceed the observed peak by this percent (default 15).
    #[serde(default)]
    #[schemars(range(min = 0, max = 200))]
    pub memory_margin_pct: Option<f64>,
    /// Azure region; prices are for the catalogue's region only.
    #[serde(default)]
    pub region: Option<String>,
    /// Only consider these families (`B`, `Dsv5`, `Dasv5`, `Esv5`, `Easv5`, `Fsv2`); default all.
    #[serde(default)]
    pub families: Vec<String>,
}

/// A size from the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Size {
    /// ARM name, e.g. `Standard_D4s_v5`.
    pub name: String,
    /// Family, e.g. `Dsv5`.
    pub family: String,
    /// vCPUs.
    pub vcpus: f64,
    /// Memory in GiB.
    pub memory_gib: f64,
    /// Linux pay-as-you-go list price, USD per hour.
    pub usd_per_hour: f64,
    /// B-series only: sustained CPU earned, in percent of one vCPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_cpu_pct: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct Catalogue {
    region: String,
    source: String,
    sizes: Vec<Size>,
}

/// What the workload needs, in absolute units.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Demand {
    /// CPU at the chosen percentile, in vCPUs.
    pub cpu_p_vcpus: f64,
    /// Mean CPU, in vCPUs (what a burstable size must sustain).
    pub cpu_mean_vcpus: f64,
    /// Memory at the chosen percentile, GiB.
    pub memory_p_gib: f64,
    /// Highest memory seen, GiB.
    pub memory_peak_gib: f64,
    /// vCPUs a size needs to keep the CPU percentile under the target.
    pub needed_vcpus: f64,
    /// GiB a size needs: the percentile under the target and the peak plus margin.
    pub needed_memory_gib: f64,
}

/// A size with its monthly cost and the projected utilisation.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Choice {
    /// The size.
    #[serde(flatten)]
    pub size: Size,
    /// Price × 730 h.
    pub usd_per_month: f64,
    /// CPU percentile as percent of this size.
    pub cpu_p_pct: f64,
    /// Memory percentile as percent of this size.
    pub memory_p_pct: f64,
}

/// The recommendation.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    /// `resize` (cheaper size fits), `keep`, or `upsize` (current size misses the target).
    pub action: String,
    /// The current size.
    pub current: Choice,
    /// The size to run; the current one for `keep`.
    pub recommended: Choice,
    /// Current minus recommended monthly cost; negative for `upsize`.
    pub monthly_savings_usd: f64,
    /// Other fitting sizes, cheapest first (at most 3).
    pub alternatives: Vec<Choice>,
    /// The workload's demand.
    pub demand: Demand,
    /// Why, in plain sentences.
    pub reasons: Vec<String>,
    /// Region the prices are for.
    pub price_region: String,
    /// Where the prices come from.
    pub price_source: String,
}

impl Tool for Rightsize {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "rightsize";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Recommend the cheapest Azure VM size (B, Dsv5, Dasv5, Esv5, Easv5, Fsv2) that keeps p95 CPU and memory under a headroom target (default 70%) and never below peak memory plus a margin, with monthly savings and reasons.";

    fn invoke(_ctx: &Context, input: Input) -> Result<Output, ToolError> {
        let catalogue: Catalogue = serde_json::from_str(CATALOGUE)
            .map_err(|e| ToolError::Failed(format!("built-in size catalogue: {e}")))?;
        recommend(&catalogue, &input)
    }
}

fn invalid(message: impl Into<String>) -> ToolError {
    ToolError::InvalidInput(message.into())
}

fn normalise(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    lower
        .strip_prefix("standard_")
        .map_or(lower.clone(), str::to_string)
}

/// Levenshtein distance, for "did you mean" lists.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(above + 1)
                .min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Validates one series and returns it in absolute units.
fn absolute(
    pct: Option<&Vec<f64>>,
    abs: Option<&Vec<f64>>,
    names: (&str, &str),
    size_of_current: f64,
) -> Result<Vec<f64>, ToolError> {
    let (values, name, scale) = match (pct, abs) {
        (Some(_), Some(_)) => {
            return Err(invalid(format!(
                "give {} or {}, not both",
                names.0, names.1
            )));
        }
        (None, None) => return Err(invalid(format!("{} or {} is required", names.0, names.1))),
        (Some(v), None) => (v, names.0, size_of_current / 100.0),
        (None, Some(v)) => (v, names.1, 1.0),
    };
    if values.is_empty() {
        return Err(invalid(format!("{name} is empty")));
    }
    for (i, &v) in values.iter().enumerate() {
        if !v.is_finite() || v < 0.0 {
            return Err(invalid(format!(
                "{name}[{i}] must be a finite non-negative number, got {v}"
            )));
        }
        if name.ends_with("_pct") && v > 100.0 {
            return Err(invalid(format!(
                "{name}[{i}] is {v}, over 100 percent; give absolute values in {} instead",
                names.1
            )));
        }
    }
    Ok(values.iter().map(|v| v * scale).collect())
}

/// Linear-interpolated percentile `p` (0..100) of non-empty `values`.
fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "rank is in 0..len"
    )]
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (rank - rank.floor())
}

fn choice(size: &Size, demand: &Demand) -> Choice {
    Choice {
        size: size.clone(),
        usd_per_month: round2(size.usd_per_hour * HOURS_PER_MONTH),
        cpu_p_pct: round2(100.0 * demand.cpu_p_vcpus / size.vcpus),
        memory_p_pct: round2(100.0 * demand.memory_p_gib / size.memory_gib),
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn recommend(catalogue: &Catalogue, input: &Input) -> Result<Output, ToolError> {
    let wanted = normalise(&input.current_size);
    let Some(current) = catalogue
        .sizes
        .iter()
        .find(|s| normalise(&s.name) == wanted)
    else {
        let mut near: Vec<&Size> = catalogue.sizes.iter().collect();
        near.sort_by_key(|s| distance(&normalise(&s.name), &wanted));
        let names: Vec<&str> = near.iter().take(5).map(|s| s.name.as_str()).collect();
        return Err(invalid(format!(
            "unknown VM size {:?}; nearby sizes: {} (the catalogue has {} sizes priced for {})",
            input.current_size,
            names.join(", "),
            catalogue.sizes.len(),
            catalogue.region
        )));
    };
    let target = input.target_pct.unwrap_or(70.0);
    let p = input.percentile.unwrap_or(95.0);
    let margin = input.memory_margin_pct.unwrap_or(15.0);
    if !(target > 0.0 && target <= 100.0) {
        return Err(invalid(format!(
            "target_pct must be in (0, 100], got {target}"
        )));
    }
    if !(50.0..=100.0).contains(&p) {
        return Err(invalid(format!("percentile must be in 50..=100, got {p}")));
    }
    if !(0.0..=200.0).contains(&margin) {
        return Err(invalid(format!(
            "memory_margin_pct must be in 0..=200, got {margin}"
        )));
    }
    let families: Vec<String> = input
        .families
        .iter()
        .map(|f| f.to_ascii_lowercase())
        .collect();
    if let Some(bad) = families.iter().find(|f| {
        !catalogue
            .sizes
            .iter()
            .any(|s| s.family.to_ascii_lowercase() == **f)
    }) {
        return Err(invalid(format!(
            "unknown family {bad:?}; known: B, Dsv5, Dasv5, Esv5, Easv5, Fsv2"
        )));
    }
    let cpu = absolute(
        input.cpu_pct.as_ref(),
        input.cpu_vcpus.as_ref(),
        ("cpu_pct", "cpu_vcpus"),
        current.vcpus,
    )?;
    let memory = absolute(
        input.memory_pct.as_ref(),
        input.memory_gib.as_ref(),
        ("memory_pct", "memory_gib"),
        current.memory_gib,
    )?;
    let memory_peak = memory.iter().copied().fold(0.0, f64::max);
    let cpu_p = percentile(&cpu, p);
    let memory_p = percentile(&memory, p);
    let demand = Demand {
        cpu_p_vcpus: round2(cpu_p),
        cpu_mean_vcpus: round2(cpu.iter().sum::<f64>() / cpu.len() as f64),
        memory_p_gib: round2(memory_p),
        memory_peak_gib: round2(memory_peak),
        needed_vcpus: round2(cpu_p / (target / 100.0)),
        needed_memory_gib: round2(
            (memory_p / (target / 100.0)).max(memory_peak * (1.0 + margin / 100.0)),
        ),
    };
    let fits = |s: &Size| {
        s.vcpus >= demand.needed_vcpus
            && s.memory_gib >= demand.needed_memory_gib
            && s.baseline_cpu_pct
                .is_none_or(|b| demand.cpu_mean_vcpus <= b / 100.0)
    };
    let mut fitting: Vec<&Size> = catalogue
        .sizes
        .iter()
        .filter(|s| families.is_empty() || families.contains(&s.family.to_ascii_lowercase()))
        .filter(|s| fits(s))
        .collect();
    // Cheapest first; at equal price the roomier size.
    fitting.sort_by(|a, b| {
        a.usd_per_hour
            .total_cmp(&b.usd_per_hour)
            .then(b.memory_gib.total_cmp(&a.memory_gib))
            .then(b.vcpus.total_cmp(&a.vcpus))
    });
    let pct = |v: f64| format!("{v:.0}%");
    let mut reasons = vec![format!(
        "p{p:.0} CPU is {:.2} vCPUs ({} of {}) and p{p:.0} memory {:.1} GiB ({}); peak memory {:.1} GiB",
        cpu_p,
        pct(100.0 * cpu_p / current.vcpus),
        current.name,
        memory_p,
        pct(100.0 * memory_p / current.memory_gib),
        memory_peak
    )];
    reasons.push(format!(
        "a size needs at least {:.2} vCPUs and {:.1} GiB to keep p{p:.0} under {target:.0}% and memory {margin:.0}% above its peak",
        demand.needed_vcpus, demand.needed_memory_gib
    ));
    let current_fits = fits(current);
    let (action, chosen) = match fitting.first() {
        Some(best) if best.usd_per_hour < current.usd_per_hour => {
            reasons.push(format!(
                "{} is the cheapest size that fits: {} vCPUs, {} GiB",
                best.name, best.vcpus, best.memory_gib
            ));
            ("resize", *best)
        }
        Some(best) if !current_fits => {
            reasons.push(format!(
                "{} misses the target; {} is the cheapest size that fits",
                current.name, best.name
            ));
            ("upsize", *best)
        }
        Some(_) => {
            reasons.push("no cheaper size fits; keep the current size".into());
            ("keep", current)
        }
        None => {
            reasons.push("no size in the catalogue fits; keep the current size".into());
            ("keep", current)
        }
    };
    if chosen.baseline_cpu_pct.is_some() {
        reasons.push(format!(
            "{} is burstable: mean CPU {:.2} vCPUs stays within its baseline of {:.2}",
            chosen.name,
            demand.cpu_mean_vcpus,
            chosen.baseline_cpu_pct.unwrap_or(0.0) / 100.0
        ));
    }
    if let Some(region) = &input.region
        && normalise(region).replace(' ', "") != catalogue.region
    {
        reasons.push(format!(
            "prices are {} list prices; {region} differs, so verify the saving with the Retail Prices API",
            catalogue.region
        ));
    }
    let current_option = choice(current, &demand);
    let recommended = choice(chosen, &demand);
    let monthly_savings_usd = round2(current_option.usd_per_month - recommended.usd_per_month);
    if monthly_savings_usd > 0.0 {
        reasons.push(format!(
            "saves about ${monthly_savings_usd:.2}/month (730 h, pay-as-you-go)"
        ));
    }
    let alternatives = fitting
        .iter()
        .filter(|s| s.name != chosen.name && s.name != current.name)
        .take(3)
        .map(|s| choice(s, &demand))
        .collect();
    Ok(Output {
        action: action.into(),
        current: current_option,
        recommended,
        monthly_savings_usd,
        alternatives,
        demand,
        reasons,
        price_region: catalogue.region.clone(),
        price_source: catalogue.source.clone(),
    })
}

export_tool!(Rightsize);

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Catalogue {
        serde_json::from_str(CATALOGUE).unwrap()
    }

    fn run(input: Input) -> Result<Output, ToolError> {
        Rightsize::invoke(&Context::default(), input)
    }

    fn message(err: ToolError) -> String {
        match err {
            ToolError::InvalidInput(m) => m,
            other => panic!("{other}"),
        }
    }

    /// A day of 5-minute samples around `base`, with a daily bump to `peak`.
    fn samples(base: f64, peak: f64) -> Vec<f64> {
        (0..288)
            .map(|i| {
                if (100..110).contains(&i) {
                    peak
                } else {
                    base + (i % 7) as f64 * 0.5
                }
            })
            .collect()
    }

    #[test]
    fn the_catalogue_is_consistent() {
        let c = catalogue();
        assert!((30..=60).contains(&c.sizes.len()), "{}", c.sizes.len());
        assert!(c.source.contains("prices.azure.com"));
        let mut names: Vec<&str> = c.sizes.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), c.sizes.len(), "duplicate size names");
        for s in &c.sizes {
            assert!(
                s.vcpus > 0.0 && s.memory_gib > 0.0 && s.usd_per_hour > 0.0,
                "{s:?}"
            );
            assert_eq!(s.baseline_cpu_pct.is_some(), s.family == "B", "{s:?}");
        }
        // Within a family, more vCPUs never cost less.
        for a in &c.sizes {
            for b in c
                .sizes
                .iter()
                .filter(|b| b.family == a.family && b.vcpus > a.vcpus)
            {
                assert!(b.usd_per_hour > a.usd_per_hour, "{} vs {}", a.name, b.name);
            }
        }
    }

    #[test]
    fn an_idle_d8_moves_to_a_cheaper_size_that_keeps_memory_above_peak() {
        // D8s_v5: 8 vCPUs, 32 GiB. CPU ~10%, memory ~30% with a 40% peak (12.8 GiB).
        let out = run(Input {
            current_size: "Standard_D8s_v5".into(),
            cpu_pct: Some(samples(8.0, 20.0)),
            memory_pct: Some(samples(28.0, 40.0)),
            families: vec!["Dsv5".into(), "Esv5".into()],
            ..Input::default()
        })
        .unwrap();
        assert_eq!(out.action, "resize");
        // 2 vCPUs and 16 GiB suffice; E2s_v5 is the cheapest such size.
        assert_eq!(out.recommended.size.name, "Standard_E2s_v5");
        assert_eq!(out.alternatives[0].size.name, "Standard_D4s_v5");
        // Never below peak memory plus the 15% margin.
        assert!(out.recommended.size.memory_gib >= 12.8 * 1.15);
        assert!(out.recommended.cpu_p_pct < 70.0 && out.recommended.memory_p_pct < 70.0);
        assert!((out.monthly_savings_usd - (0.384 - 0.126) * 730.0).abs() < 0.01);
        assert!(
            out.reasons
                .iter()
                .any(|r| r.contains("saves about $188.34/month")),
            "{:?}",
            out.reasons
        );
    }

    #[test]
    fn memory_peak_overrides_a_low_percentile() {
        // p95 memory is 4 GiB (a 2 vCPU, 8 GiB size would do), but one
        // 26 GiB peak needs 29.9 GiB.
        let mut memory = vec![4.0; 200];
        memory[50] = 26.0;
        let out = run(Input {
            current_size: "e8s_v5".into(),
            cpu_vcpus: Some(vec![0.5; 200]),
            memory_gib: Some(memory),
            families: vec!["Esv5".into(), "Dsv5".into()],
            ..Input::default()
        })
        .unwrap();
        assert!(
            out.recommended.size.memory_gib >= 26.0 * 1.15,
            "{:?}",
            out.recommended
        );
        assert_eq!(out.recommended.size.name, "Standard_E4s_v5");
    }

    #[test]
    fn a_busy_vm_keeps_its_size_or_is_told_to_upsize() {
        let busy = run(Input {
            current_size: "Standard_D2s_v5".into(),
            cpu_pct: Some(vec![60.0; 50]),
            memory_pct: Some(vec![50.0; 50]),
            families: vec!["Dsv5".into()],
            ..Input::default()
        })
        .unwrap();
        assert_eq!(busy.action, "keep");
        assert_eq!(busy.monthly_savings_usd, 0.0);
        let over = run(Input {
            current_size: "Standard_D2s_v5".into(),
            cpu_pct: Some(vec![95.0; 50]),
            memory_pct: Some(vec![50.0; 50]),
            families: vec!["Dsv5".into()],
            ..Input::default()
        })
        .unwrap();
        assert_eq!(over.action, "upsize");
        assert_eq!(over.recommended.size.name, "Standard_D4s_v5");
        assert!(over.monthly_savings_usd < 0.0);
    }

    #[test]
    fn burstable_sizes_need_mean_cpu_within_their_baseline() {
        // Mean 0.5 vCPU: B2s (baseline 0.4) is out, B2ms (0.6) is in.
        let out = run(Input {
            current_size: "Standard_D4s_v5".into(),
            cpu_vcpus: Some(vec![0.5; 100]),
            memory_gib: Some(vec![2.0; 100]),
            families: vec!["B".into()],
            ..Input::default()
        })
        .unwrap();
        assert_eq!(out.recommended.size.name, "Standard_B2ms");
        assert!(out.reasons.iter().any(|r| r.contains("burstable")));
    }

    #[test]
    fn a_foreign_region_is_flagged_in_the_reasons() {
        let out = run(Input {
            current_size: "Standard_D4s_v5".into(),
            cpu_pct: Some(vec![10.0; 10]),
            memory_pct: Some(vec![10.0; 10]),
            region: Some("westeurope".into()),
            ..Input::default()
        })
        .unwrap();
        assert!(out.reasons.iter().any(|r| r.contains("westeurope differs")));
        assert_eq!(out.price_region, "eastus");
    }

    #[test]
    fn unknown_sizes_and_bad_series_are_clear_errors() {
        let err = message(
            run(Input {
                current_size: "Standard_D3s_v5".into(),
                cpu_pct: Some(vec![1.0]),
                memory_pct: Some(vec![1.0]),
                ..Input::default()
            })
            .unwrap_err(),
        );
        assert!(
            err.starts_with("unknown VM size \"Standard_D3s_v5\"; nearby sizes: "),
            "{err}"
        );
        assert!(err.contains("Standard_D2s_v5"), "{err}");
        let base = || Input {
            current_size: "Standard_D4s_v5".into(),
            cpu_pct: Some(vec![1.0, 2.0]),
            memory_pct: Some(vec![1.0, 2.0]),
            ..Input::default()
        };
        let over = Input {
            cpu_pct: Some(vec![10.0, 250.0]),
            ..base()
        };
        assert!(message(run(over).unwrap_err()).contains("cpu_pct[1] is 250, over 100 percent"));
        let nan = Input {
            memory_pct: Some(vec![f64::NAN]),
            ..base()
        };
        assert!(message(run(nan).unwrap_err()).contains("memory_pct[0]"));
        let none = Input {
            memory_pct: None,
            ..base()
        };
        assert!(message(run(none).unwrap_err()).contains("memory_pct or memory_gib is required"));
        let family = Input {
            families: vec!["Z".into()],
            ..base()
        };
        assert!(message(run(family).unwrap_err()).contains("unknown family"));
    }

    #[test]
    fn the_manifest_schemas_name_the_inputs_and_outputs() {
        let input = serde_json::to_string(&schemars::schema_for!(Input)).unwrap();
        for field in [
            "current_size",
            "cpu_pct",
            "memory_gib",
            "target_pct",
            "region",
        ] {
            assert!(input.contains(field), "{field}: {input}");
        }
        let output = serde_json::to_string(&schemars::schema_for!(Output)).unwrap();
        assert!(output.contains("monthly_savings_usd") && output.contains("usd_per_hour"));
    }

    #[test]
    fn percentile_interpolates_between_ranks() {
        let v: Vec<f64> = (1..=101).map(f64::from).collect();
        assert_eq!(percentile(&v, 95.0), 96.0);
        assert_eq!(percentile(&[3.0, 1.0], 50.0), 2.0);
    }
}
