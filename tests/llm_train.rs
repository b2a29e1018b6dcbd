//! LLM tuning end to end on the letter task: the reference model learns the
//! task's corpus, f-TB moves the tuned model toward the exact target
//! `p* ∝ pi_ref exp(r / beta)` (exact KL over every answer of every prompt),
//! at lag 0 and with a lag of 10 steps through the keyed buffer.

use ftb::llm::train::{LlmConfig, LlmTrainer, run};

fn cfg(extra: &[&str]) -> LlmConfig {
    let mut o: Vec<String> = ["steps=120", "eval_every=40", "pretrain.steps=150"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    o.extend(extra.iter().map(|s| s.to_string()));
    LlmConfig::load(None, &o).unwrap()
}

fn kl_curve(extra: &[&str]) -> Vec<f64> {
    let mut t = LlmTrainer::new(cfg(extra)).unwrap();
    let points = run(&mut t, None, |_, _| {}).unwrap();
    for p in &points {
        eprintln!(
            "{extra:?} it {:>4} KL {:.4} L1 {:.4} E[r] {:.3} staleness {:.1}",
            p.iteration, p.kl, p.l1, p.expected_reward, p.staleness
        );
    }
    points.iter().map(|p| p.kl).collect()
}

#[test]
fn ftb_moves_the_model_toward_the_exact_target() {
    let kl = kl_curve(&[]);
    assert!(kl.last().unwrap() < &(0.5 * kl[0]), "{kl:?}");
}

#[test]
fn ftb_with_a_lag_of_ten_through_the_keyed_buffer() {
    let kl = kl_curve(&["sampling.lag=10", "sampling.source=\"keyed\""]);
    assert!(kl.last().unwrap() < &(0.5 * kl[0]), "{kl:?}");
}
