# Reference values for tests/test_scores.py.  Run:  Rscript tests/reference/scores.R
# The data are given as counts (so the Python test rebuilds the same vectors).
options(digits = 15)
out <- function(name, x) cat(sprintf("%s = [%s]\n", name, paste(sprintf("%.12g", x), collapse = ", ")))

# CSAT: 1-5 answers with counts 12, 25, 60, 110, 93
sat <- rep(1:5, times = c(12, 25, 60, 110, 93))
k <- sum(sat >= 4); n <- length(sat)
out("top2_wilson", prop.test(k, n, correct = FALSE)$conf.int)        # Wilson score interval
y <- (sat - 1) / (5 - 1) * 100
out("mean_0_100_t", c(mean(y), t.test(y)$conf.int))                  # t interval of the 0-100 mean

# NPS: 0-10 answers with counts 3, 2, 4, 5, 6, 8, 10, 20, 25, 30, 27
rec <- rep(0:10, times = c(3, 2, 4, 5, 6, 8, 10, 20, 25, 30, 27))
n <- length(rec); np <- sum(rec >= 9); nd <- sum(rec <= 6)
p <- np / n; d <- nd / n; z <- qnorm(0.975)
se <- sqrt((p + d - (p - d)^2) / n)
# adjusted Wald, Rocks (2016): +3/4 promoter, +3/4 detractor, +3 respondents
pa <- (np + 0.75) / (n + 3); da <- (nd + 0.75) / (n + 3)
sea <- sqrt((pa + da - (pa - da)^2) / (n + 3))
out("nps", 100 * c(p - d, p, d, se, p - d - z * se, p - d + z * se, pa - da - z * sea, pa - da + z * sea))
# independent check of the Wald se: the trinomial mean of +1/0/-1 scores has the same (ML) variance
s <- ifelse(rec >= 9, 1, ifelse(rec <= 6, -1, 0))
out("nps_trinomial_se", 100 * sqrt(mean((s - mean(s))^2) / n))
