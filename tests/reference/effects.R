# Reference values for tests/test_effects.py. Run from the project root:
#   Rscript tests/reference/effects.R
# Convention of study.stats.effects.compare(before, after): estimate = after - before, so R is called
# with x = after, y = before.
options(digits = 10)
suppressMessages(library(effectsize))
pr <- function(e) print(as.data.frame(e), digits = 10)
data(sleep)
before <- sleep$extra[sleep$group == 1]   # -0.1 ... (drug 1)
after  <- sleep$extra[sleep$group == 2]
cat("before:", before, "\nafter:", after, "\n")
show <- function(tag, h) cat(sprintf("%s: statistic=%.10g df=%s p=%.10g est=%s ci=[%s]\n", tag, h$statistic,
  if (is.null(h$parameter)) "NA" else format(h$parameter, digits = 10), h$p.value,
  if (is.null(h$estimate)) "NA" else paste(format(h$estimate, digits = 10), collapse = ","),
  if (is.null(h$conf.int)) "" else paste(format(h$conf.int, digits = 10), collapse = ",")))
show("welch", t.test(after, before))
show("student", t.test(after, before, var.equal = TRUE))
show("paired_t", t.test(after, before, paired = TRUE))
show("mann_whitney(ties: normal approx)", suppressWarnings(wilcox.test(after, before)))
show("wilcoxon paired(ties/zero: normal approx)", suppressWarnings(wilcox.test(after, before, paired = TRUE)))
pr(hedges_g(after, before))
pr(cohens_d(after, before, paired = TRUE))
pr(rank_biserial(after, before))
pr(rank_biserial(after, before, paired = TRUE))

# exact cases (no ties): the examples of ?wilcox.test
x <- c(0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46)
y <- c(1.15, 0.88, 0.90, 0.74, 1.21)
show("mann_whitney exact (after=x, before=y)", wilcox.test(x, y))
xp <- c(1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30)
yp <- c(0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29)
show("wilcoxon exact paired (after=yp, before=xp)", wilcox.test(yp, xp, paired = TRUE))
pr(rank_biserial(x, y))
pr(rank_biserial(yp, xp, paired = TRUE))
# large samples without ties: normal approximation (n >= 50)
xl <- (1:60)^1.5 / 10; yl <- (1:55)^1.45 / 10 + 0.05
show("mann_whitney n>=50 (after=xl, before=yl)", wilcox.test(xl, yl))

# two proportions on sleep: share with extra sleep > 1 hour
show("prop.test sleep >1h", suppressWarnings(prop.test(c(sum(after > 1), sum(before > 1)), c(10, 10))))
# cohens_h on the 2x2 table: columns = groups (after, before), rows = (success, failure)
pr(cohens_h(matrix(c(sum(after > 1), sum(after <= 1), sum(before > 1), sum(before <= 1)), 2)))
show("prop.test 83/120 vs 65/118", prop.test(c(83, 65), c(120, 118)))
pr(cohens_h(matrix(c(83, 120 - 83, 65, 118 - 65), 2)))

# DiD with branch-clustered CR1 SE on ChickWeight (chicks = clusters; diets 3,4 = treated;
# post = Time >= 12), by hand: V = c (X'X)^-1 (sum_g X_g'e_g e_g'X_g) (X'X)^-1,
# c = G/(G-1) (N-1)/(N-K); and sandwich::vcovCL(type = "HC1") as a second check.
cw <- as.data.frame(ChickWeight)
cw$Chick <- as.character(cw$Chick); cw$Diet <- as.integer(as.character(cw$Diet))
write.csv(cw[, c("weight", "Time", "Chick", "Diet")], "tests/data/chickweight.csv", row.names = FALSE)
did_cr1 <- function(d) {
  d$treated <- as.numeric(d$Diet %in% c(3, 4)); d$post <- as.numeric(d$Time >= 12)
  fit <- lm(weight ~ treated + factor(Time) + treated:post, data = d)
  X <- model.matrix(fit); e <- resid(fit); XtXi <- solve(crossprod(X))
  S <- rowsum(X * e, d$Chick); G <- nrow(S); N <- nrow(X); K <- ncol(X)
  V <- G / (G - 1) * (N - 1) / (N - K) * XtXi %*% crossprod(S) %*% XtXi
  j <- "treated:post"; b <- coef(fit)[j]; se <- sqrt(V[j, j]); t <- b / se
  cat(sprintf("DiD est=%.10g se=%.10g t=%.10g p(t,G-1)=%.10g ci=[%.10g, %.10g] G=%d N=%d\n", b, se, t,
              2 * pt(-abs(t), G - 1), b - qt(.975, G - 1) * se, b + qt(.975, G - 1) * se, G, N))
  Vs <- sandwich::vcovCL(fit, cluster = ~Chick, type = "HC1")
  cat(sprintf("  sandwich::vcovCL se=%.10g\n", sqrt(Vs[j, j])))
}
cat("== ChickWeight, all chicks\n"); did_cr1(cw)
sub <- cw[cw$Chick %in% as.character(c(1:5, 21:30, 41:45)), ]
cat("== ChickWeight, 20 chicks (1-5, 21-30, 41-45)\n"); did_cr1(sub)

# multiple testing and power
p <- c(0.01, 0.04, 0.03, 0.005, 0.2, NA)
cat("holm:", format(p.adjust(p, "holm"), digits = 10), "\n")
cat("BH:", format(p.adjust(p, "BH"), digits = 10), "\n")
g <- 0.7969352392   # Hedges' g of the sleep data above
cat("power.t.test(n=10, delta=g, strict=TRUE):", power.t.test(n = 10, delta = g, sd = 1, strict = TRUE)$power, "\n")
cat("power.t.test(n=10, power=.8, strict=TRUE)$delta:", power.t.test(n = 10, power = 0.8, sd = 1, strict = TRUE)$delta, "\n")
dz <- 1.284557563    # d_z of the paired sleep data
cat("power.t.test(n=10, delta=dz, type='one.sample', strict=TRUE):",
    power.t.test(n = 10, delta = dz, sd = 1, type = "one.sample", strict = TRUE)$power, "\n")
