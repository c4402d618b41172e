# Reference values for tests/test_requests.py (study.stats.requests): Garwood exact Poisson intervals and Wilson
# score intervals. Run: Rscript tests/reference/requests.R
options(digits = 15)
show <- function(label, x) cat(label, paste(format(x, digits = 15), collapse = " "), "\n")

# complaints per million visits: poisson.test(x, T)$conf.int, T in millions of visits
show("poisson 7 / 2.560178", poisson.test(7, 2.560178)$conf.int)
show("poisson 0 / 2.5", poisson.test(0, 2.5)$conf.int)
show("poisson 1 / 0.8", poisson.test(1, 0.8)$conf.int)
show("poisson 3 / 2.5 (90%)", poisson.test(3, 2.5, conf.level = 0.90)$conf.int)
show("poisson 250 / 40", poisson.test(250, 40)$conf.int)

# AI containment / handoff: prop.test(x, n, correct = FALSE)$conf.int (Wilson score interval)
show("wilson 2260 / 3248", prop.test(2260, 3248, correct = FALSE)$conf.int)
show("wilson 912 / 3248", prop.test(912, 3248, correct = FALSE)$conf.int)
show("wilson 0 / 5", prop.test(0, 5, correct = FALSE)$conf.int)
show("wilson 5 / 5", prop.test(5, 5, correct = FALSE)$conf.int)
show("wilson 1 / 1", prop.test(1, 1, correct = FALSE)$conf.int)
show("wilson 7 / 10 (90%)", prop.test(7, 10, correct = FALSE, conf.level = 0.90)$conf.int)

# rate ratio of two quarters' complaints: poisson.test(c(x1, x0), c(T1, T0))$conf.int (exact conditional)
show("ratio 7/2.56 vs 10/2.52", poisson.test(c(7, 10), c(2.56, 2.52))$conf.int)
show("ratio 0/2.5 vs 4/2.4", poisson.test(c(0, 4), c(2.5, 2.4))$conf.int)
show("ratio 30/40 vs 12/38 (90%)", poisson.test(c(30, 12), c(40, 38), conf.level = 0.90)$conf.int)
# a mean's t interval and Welch's difference from summaries: t.test on the same values
x <- c(3, 4, 4, 5, 2, 5, 4, 3, 4, 5); y <- c(2, 3, 4, 3, 3, 2, 4, 3)
show("t.test(x)", t.test(x)$conf.int)
show("t.test(x, y) welch", t.test(x, y)$conf.int)
# the rating comparison from counts per value (requests.compare_counts): t.test and wilcox.test on the expanded ratings
human <- rep(1:5, c(40, 61, 180, 402, 317)); ai <- rep(1:5, c(25, 30, 96, 310, 339))
tt <- t.test(ai, human)
show("t.test(ai, human) t df p", c(tt$statistic, tt$parameter, tt$p.value))
show("t.test(ai, human) conf.int", tt$conf.int)
show("wilcox.test(ai, human) W p", c(wilcox.test(ai, human)$statistic, wilcox.test(ai, human)$p.value))
# seed §5: a sampled channel coverage and customer-information accuracy (requests.wilson via point_service)
show("wilson 44 / 48", prop.test(44, 48, correct = FALSE)$conf.int)
show("wilson 960 / 1000", prop.test(960, 1000, correct = FALSE)$conf.int)
show("wilson 850 / 1000", prop.test(850, 1000, correct = FALSE)$conf.int)
show("wilson 4005 / 6014", prop.test(4005, 6014, correct = FALSE)$conf.int)
