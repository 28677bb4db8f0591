// An expensive function worth sending to a batch job: a Monte Carlo estimate of pi.
// It is a named export of a module, which is what lets xpr ship it to a job.

/** A small, seedable random number generator, so every run of a seed gives the same estimate. */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function estimatePi(seed, samples) {
  const random = mulberry32(seed);
  let inside = 0;
  for (let i = 0; i < samples; i++) {
    const x = random();
    const y = random();
    if (x * x + y * y <= 1) inside++;
  }
  console.log(`seed ${seed}: ${inside} of ${samples} points inside the circle`);
  return { seed, samples, inside, estimate: (4 * inside) / samples };
}
