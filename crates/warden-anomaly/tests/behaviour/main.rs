//! Behaviour of the public API on small synthetic series.

mod detect;
mod errors;
mod forecast;
mod nab;

/// Deterministic standard-normal noise (xorshift + Box–Muller), so tests
/// need no RNG crate and always see the same series.
#[derive(Debug)]
pub struct Noise(u64);

impl Noise {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) as f64 + 0.5) / (1_u64 << 53) as f64
    }

    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// `n` points of `level + sd · noise`.
pub fn noisy(n: usize, level: f64, sd: f64, seed: u64) -> Vec<f64> {
    let mut noise = Noise::new(seed);
    (0..n).map(|_| level + sd * noise.normal()).collect()
}
