// The order statistics every benchmark reports its rounds and pairs by.

/** The median of `values` (the mean of the two middle ones for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const order = [...values].sort((a, b) => a - b);
  const middle = order.length >> 1;
  return order.length % 2 === 1 ? order[middle]! : (order[middle - 1]! + order[middle]!) / 2;
}

/**
 * The distribution-free 95% confidence interval of the median: the order statistics k and
 * n-k+1 for the largest k with P(Binomial(n, 1/2) < k) <= 2.5%. Up to n = 8 that is the whole
 * range, which below n = 6 covers less than 95% (1 - 2^(1-n)). NaNs when empty.
 */
export function medianInterval(values: readonly number[]): [number, number] {
  const n = values.length;
  if (n === 0) return [Number.NaN, Number.NaN];
  let below = 0; // P(B < k)
  let pmf = 0.5 ** n; // P(B = k), from k = 0
  let k = 0;
  while (k < n / 2 && below + pmf <= 0.025) {
    below += pmf;
    k += 1;
    pmf *= (n - k + 1) / k;
  }
  const order = [...values].sort((a, b) => a - b);
  return k === 0 ? [order[0]!, order[n - 1]!] : [order[k - 1]!, order[n - k]!];
}
