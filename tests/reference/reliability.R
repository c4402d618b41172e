# Reference values for tests/test_reliability.py (psych, lavaan, semTools).
# Run from the project root:  Rscript tests/reference/reliability.R
# Writes the fixtures tests/data/holzinger.csv and tests/data/bfi_a.csv, and prints every value
# the Python tests compare with (paste them into the test, next to the R call).
suppressPackageStartupMessages({library(psych); library(lavaan); library(semTools)})
options(digits = 15, width = 200)
cat("# psych", as.character(packageVersion("psych")), "lavaan", as.character(packageVersion("lavaan")),
    "semTools", as.character(packageVersion("semTools")), "\n")

out <- function(name, x) cat(sprintf("%s = %s\n", name, paste0("[", paste(sprintf("%.12g", x), collapse = ", "), "]")))

# ---- fixtures ------------------------------------------------------------------------------
hs <- HolzingerSwineford1939[, c("id", paste0("x", 1:9))]
write.csv(hs, "tests/data/holzinger.csv", row.names = FALSE)
data(bfi, package = "psych")
a <- bfi[complete.cases(bfi[, paste0("A", 1:5)]), paste0("A", 1:5)]
a <- head(a, 500)
write.csv(a, "tests/data/bfi_a.csv", row.names = FALSE)
# compute everything from the files as written, so R and Python read the same numbers
hs <- read.csv("tests/data/holzinger.csv"); a <- read.csv("tests/data/bfi_a.csv")
a_rev <- a; a_rev$A1 <- 7 - a_rev$A1   # A1 is reverse keyed on the 1..6 scale

scales <- list(visual = paste0("x", 1:3), textual = paste0("x", 4:6), speed = paste0("x", 7:9))

# ---- psych::alpha -------------------------------------------------------------------------
alpha_report <- function(tag, d) {
  al <- psych::alpha(d, check.keys = FALSE, warnings = FALSE)
  out(paste0(tag, "_raw_alpha"), al$total$raw_alpha)
  out(paste0(tag, "_std_alpha"), al$total$std.alpha)
  out(paste0(tag, "_average_r"), al$total$average_r)
  out(paste0(tag, "_alpha_drop"), al$alpha.drop$raw_alpha)
  out(paste0(tag, "_r_drop"), al$item.stats$r.drop)
  out(paste0(tag, "_mean"), al$item.stats$mean)
  out(paste0(tag, "_sd"), al$item.stats$sd)
  ci <- psych::alpha.ci(al$total$raw_alpha, n.obs = nrow(d), n.var = ncol(d), p.val = 0.05, digits = 15)
  out(paste0(tag, "_feldt"), c(ci$lower.ci, ci$upper.ci))
}
for (s in names(scales)) alpha_report(paste0("hs_", s), hs[, scales[[s]]])
alpha_report("bfi_a", a_rev)

# ---- KMO and Bartlett ---------------------------------------------------------------------
for (tag in c("hs", "bfi_a")) {
  d <- if (tag == "hs") hs[, paste0("x", 1:9)] else a_rev
  k <- psych::KMO(d)
  out(paste0(tag, "_kmo"), k$MSA)
  out(paste0(tag, "_msa"), k$MSAi)
  b <- psych::cortest.bartlett(d)   # n = nrow(d), R = cor(d)
  out(paste0(tag, "_bartlett"), c(b$chisq, b$df, b$p.value))
}

# ---- lavaan: the measurement model (3 correlated factors) ---------------------------------
model <- "visual =~ x1 + x2 + x3
          textual =~ x4 + x5 + x6
          speed =~ x7 + x8 + x9"
fit <- cfa(model, data = hs)
fm <- fitMeasures(fit, c("chisq", "df", "pvalue", "cfi", "tli", "rmsea", "rmsea.ci.lower", "rmsea.ci.upper", "srmr"))
out("hs_fit", fm)
ss <- standardizedSolution(fit)
ld <- ss[ss$op == "=~", ]
out("hs_loading_std", ld$est.std)
pe <- parameterEstimates(fit)
out("hs_loading", pe[pe$op == "=~", "est"])
cr_ave <- t(sapply(split(ld$est.std, ld$lhs)[names(scales)], function(l) c(sum(l)^2 / (sum(l)^2 + sum(1 - l^2)), mean(l^2))))
out("hs_cr", cr_ave[, 1]); out("hs_ave", cr_ave[, 2])
out("hs_compRelSEM", unlist(compRelSEM(fit))[names(scales)])
# lower triangle order: (textual,visual), (speed,visual), (speed,textual)
out("hs_htmt", semTools::htmt(model, data = hs, htmt2 = FALSE)[lower.tri(diag(3))])  # Henseler et al. (2015)
out("hs_htmt2", semTools::htmt(model, data = hs, htmt2 = TRUE)[lower.tri(diag(3))])  # geometric means (Roemer et al. 2021)
lv <- lavInspect(fit, "cor.lv")
out("hs_factor_cor", lv[lower.tri(lv)])

# ---- lavaan: one-factor model per scale, McDonald's omega_total ---------------------------
omega1 <- function(d, items) {
  f <- cfa(paste("f =~", paste(items, collapse = " + ")), data = d)
  p <- parameterEstimates(f)
  lam <- p[p$op == "=~", "est"]; psi <- p[p$op == "~~" & p$lhs == "f", "est"]
  th <- p[p$op == "~~" & p$lhs %in% items & p$lhs == p$rhs, "est"]
  sum(lam)^2 * psi / (sum(lam)^2 * psi + sum(th))
}
out("hs_omega_total", sapply(names(scales), function(s) omega1(hs, scales[[s]])))
out("bfi_a_omega_total", omega1(a_rev, paste0("A", 1:5)))
f1 <- cfa(paste("f =~", paste(paste0("A", 1:5), collapse = " + ")), data = a_rev)
out("bfi_a_onefactor_fit", fitMeasures(f1, c("chisq", "df", "cfi", "tli", "rmsea", "srmr")))

# ---- lavaan's post-estimation check: an improper solution (Heywood case) --------------------
# tests/data/heywood.csv: 150 rows drawn (numpy seed 20261130) from a population where r(a1,a2) = r(a1,a3) = .8 and
# r(a2,a3) = .5, so the one-factor model for A needs a standardised loading of a1 above 1
hw <- read.csv("tests/data/heywood.csv")
fit_hw <- cfa("A =~ a1 + a2 + a3; B =~ b1 + b2 + b3", data = hw)   # warns: some estimated ov variances are negative
pe_hw <- parameterEstimates(fit_hw)
out("heywood_theta", pe_hw[pe_hw$op == "~~" & pe_hw$lhs %in% c("a1", "a2", "a3", "b1", "b2", "b3") & pe_hw$lhs == pe_hw$rhs, "est"])
out("heywood_post_check", as.numeric(lavInspect(fit_hw, "post.check")))   # 0 = FALSE
out("heywood_fit", fitMeasures(fit_hw, c("chisq", "df", "cfi", "rmsea")))
out("hs_post_check", as.numeric(lavInspect(fit, "post.check")))           # 1 = TRUE
