# Reference values for the design-based driver regression and difference-in-differences
# (tests/test_design.py; R survey package). Run from the project root:
#   Rscript tests/reference/design_models.R
# Reads the fixture tests/data/design_bank.csv written by design.R (two quarters of a stratified
# bank survey, six branches of unequal size, equal-ish allocation).
suppressPackageStartupMessages(library(survey))
cat("# survey", as.character(packageVersion("survey")), "\n")
out <- function(name, x) cat(sprintf("%s = [%s]\n", name, paste(sprintf("%.15g", x), collapse = ", ")))
d <- read.csv("tests/data/design_bank.csv")
d$csat_0_100 <- (d$overall_satisfaction - 1) / 4 * 100
d$top2 <- as.numeric(d$overall_satisfaction >= 4)
d$w <- d$pop / ave(d$pop, d$quarter, d$branch_id, FUN = length)

# ---- driver regression on the design, with missing predictor values ------------------------------
q1 <- subset(d, quarter == "2025Q1")
q1$x2[seq(1, nrow(q1), by = 7)] <- NA          # 20 missing answers: svyglm drops the rows, keeping the design
des <- svydesign(ids = ~1, strata = ~branch_id, fpc = ~pop, weights = ~w, data = q1)
fit <- svyglm(csat_0_100 ~ x1 + x2, design = des)
s <- summary(fit)$coefficients
out("drv_coef", s[, 1]); out("drv_se", s[, 2]); out("drv_t", s[, 3]); out("drv_p", s[, 4])
out("drv_df_residual", fit$df.residual)
out("drv_ci", confint(fit, df = fit$df.residual))          # t(df.residual) interval, as summary's p
rt <- regTermTest(fit, ~x1 + x2)                            # joint Wald F of the predictors
out("drv_wald", c(rt$Ftest, rt$df, rt$ddf, rt$p))
ok <- complete.cases(q1[, c("csat_0_100", "x1", "x2")])
w <- weights(des)[ok]; y <- q1$csat_0_100[ok]
out("drv_r2", 1 - sum(w * residuals(fit, "response")^2) / sum(w * (y - weighted.mean(y, w))^2))
# a stratum with one respondent (lonely PSU "adjust", as the toolkit)
options(survey.lonely.psu = "adjust")
q1b <- rbind(q1[q1$branch_id != "B5", ], q1[q1$branch_id == "B5", ][2, ])   # B5 keeps its second respondent (its first has no x2)
desb <- svydesign(ids = ~1, strata = ~branch_id, fpc = ~pop, weights = ~I(pop / ave(pop, branch_id, FUN = length)), data = q1b)
fitb <- svyglm(csat_0_100 ~ x1 + x2, design = desb)
out("drv_lonely_coef", coef(fitb)); out("drv_lonely_se", SE(fitb))
options(survey.lonely.psu = "fail")

# ---- difference-in-differences on the stacked quarters' design -----------------------------------
# Treatment (the pilot) is assigned by branch, and the branches are the strata of each quarter's design.
# The DiD uses the design the samples were drawn by: the two quarters stacked, strata = quarter x branch,
# fpc, each respondent with its quarter's weight; branches in neither group (B6) are left out as a domain
# (subset keeps the design). The alternative of clustering by branch is printed below for the record.
d$treated <- as.numeric(d$branch_id %in% c("B1", "B2", "B3"))
d$post <- as.numeric(d$quarter == "2025Q2")
d$stratum <- paste(d$quarter, d$branch_id)
ds <- svydesign(ids = ~1, strata = ~stratum, fpc = ~pop, weights = ~w, data = d)
for (v in c("csat_0_100", "top2")) {
  fit <- svyglm(reformulate("treated * post", v), design = subset(ds, branch_id != "B6"))
  s <- summary(fit)$coefficients
  out(paste0("did_", v), c(s["treated:post", ], fit$df.residual, confint(fit, df = fit$df.residual)["treated:post", ]))
}
# before/after within the pilot branches: svyttest on the stacked design, the pilot branches as a domain
tt <- svyttest(csat_0_100 ~ post, subset(ds, treated == 1))
out("pilot_before_after_csat_0_100", c(tt$estimate, tt$statistic, tt$parameter, tt$p.value, tt$conf.int))
# not used: branch as the cluster (PSU) across both quarters, no strata (G - 4 residual df)
dd <- svydesign(ids = ~branch_id, weights = ~w, data = d)
fit <- svyglm(csat_0_100 ~ treated * post, design = dd)
s <- summary(fit)$coefficients
out("did_cluster_csat_0_100", c(s["treated:post", ], fit$df.residual))

# ---- pilot against control in one quarter, a third group of branches left out (a domain) ----------
q2 <- subset(d, quarter == "2025Q2")
q2$grp <- ifelse(q2$branch_id %in% c("B1", "B2", "B3"), "pilot", ifelse(q2$branch_id %in% c("B4", "B5"), "control", "other"))
des2 <- svydesign(ids = ~1, strata = ~branch_id, fpc = ~pop, weights = ~w, data = q2)
tt <- svyttest(csat_0_100 ~ grp, subset(des2, grp != "other"))
out("q2_pilot_control_domain", c(tt$estimate, tt$statistic, tt$parameter, tt$p.value, tt$conf.int))

# ---- DiD with a stratum of one respondent (B5 in 2025Q2 keeps its first), lonely PSU "adjust" ---------
options(survey.lonely.psu = "adjust")
keep <- !(d$branch_id == "B5" & d$quarter == "2025Q2") | seq_len(nrow(d)) == min(which(d$branch_id == "B5" & d$quarter == "2025Q2"))
dl <- d[keep, ]
dl$w <- dl$pop / ave(dl$pop, dl$quarter, dl$branch_id, FUN = length)
dsl <- svydesign(ids = ~1, strata = ~stratum, fpc = ~pop, weights = ~w, data = dl)
fit <- svyglm(csat_0_100 ~ treated * post, design = subset(dsl, branch_id != "B6"))
s <- summary(fit)$coefficients
out("did_lonely_csat_0_100", c(s["treated:post", ], fit$df.residual))
options(survey.lonely.psu = "fail")
