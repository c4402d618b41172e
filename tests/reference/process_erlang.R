# Reference for study.stats.process.erlang_c / service_level / required_servers (M/M/c, Erlang C),
# written from the textbook formula in base R. Published worked example (pyworkforce README,
# R package ErlangC 0.1.0 README): 100 calls per 30 min, AHT 180 s, 14 agents ->
# P(wait) = 0.1741319, service level (20 s) = 0.88835, ASA = 7.836 s; 11 agents -> 0.6821182.
# Run: Rscript tests/reference/process_erlang.R
erlang_c <- function(A, c) {
  top <- A^c / factorial(c) * c / (c - A)
  top / (sum(A^(0:(c - 1)) / factorial(0:(c - 1))) + top)
}
lambda <- 100 / 1800; aht <- 180; A <- lambda * aht
for (c in c(11, 14)) {
  pw <- erlang_c(A, c)
  sl <- 1 - pw * exp(-(c - A) * 20 / aht)
  asa <- pw * aht / (c - A)
  cat(sprintf("c=%d pw=%.10f sl20=%.10f asa=%.10f\n", c, pw, sl, asa))
}
need <- min(which(sapply(11:40, function(c) 1 - erlang_c(A, c) * exp(-(c - A) * 20 / aht)) >= 0.8)) + 10
cat(sprintf("required_80_20=%d\n", need))
# a bank counter: 30 customers/hour, 12 min handling, 10-min target
A2 <- 30 * 12 / 60
for (c in 7:9) cat(sprintf("bank c=%d pw=%.10f sl10=%.10f\n", c, erlang_c(A2, c), 1 - erlang_c(A2, c) * exp(-(c - A2) * 10 / 12)))
