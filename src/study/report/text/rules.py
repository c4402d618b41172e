"""The documented rules that generate the report's findings, problems and recommendations (printed in Appendix A).

Every sentence the report writes about the data comes from a rule in :data:`RULES`; the methods appendix prints
this table, so a reviewer can see why a finding was raised or a recommendation made.
"""

from __future__ import annotations

import pandas as pd

from study import i18n
from study.i18n import N_

#: Business types more than this far over their standard handling time are a problem (per cent).
DEVIATION_PROBLEM_PCT = 20.0


#: A branch-hour whose saturation against the counters actually used reaches this is overloaded.
SATURATION_HIGH = 0.85


_RULE_TEXTS = [
    ("CHANGE", N_("Headline change"), N_("A change against the baseline is called an improvement or a deterioration only when "
     "its test is significant at the study's α (two-sided); otherwise 'no significant change', whatever the point estimate.")),
    ("PRIORITY", N_("Dimensions to act on first"), N_("Dimensions in the 'concentrate here' quadrant of the importance–performance "
     "analysis (LMG share at or above the mean share, score below the mean score), most important first; remaining places "
     "go to the important dimensions with the lowest scores, then to the lowest scores overall; the text says which clause "
     "chose each. Three are named (all of them when the questionnaire has fewer).")),
    ("PROBLEM-DIM", N_("Problem: dimension"), N_("Each priority dimension is a problem, with its score, its rank by score and its "
     "share of the explained variance of overall satisfaction.")),
    ("PROBLEM-PROCESS", N_("Problem: business type over standard"),
     N_("Business types whose mean handling time exceeds the standard of study.yml by more than {} %, "
        "largest deviation first (at most three).")),
    ("PROBLEM-BRANCH", N_("Problem: branch service level"),
     N_("Branches whose share of customers called within the waiting target is below the target share, lowest first (at most "
        "three), with their busiest hour's saturation F against the counters actually used (F ≥ {} is high).")),
    ("PROBLEM-SCALE", N_("Problem: measurement"), N_("Questionnaire scales below a reliability or validity threshold "
     "(Appendix A thresholds) are named, so their scores are read with care.")),
    ("PROBLEM-BENCH", N_("Problem: competitor gap"), N_("Competitor metrics where our bank ranks in the lower half.")),
    ("EFFECT", N_("Effect of a measure"), N_("Each measure is evaluated in the window its start date allows: started in the "
     "reported quarter, before against after its start; started in or before the baseline quarter, baseline against "
     "current quarter, a sustained-effect comparison (whether the effect grew or held, not the effect of introducing "
     "it); starting after the quarter, planned and not tested; without observations on both sides, not testable (the "
     "reason is given). With control branches, a measure improved a metric when the difference-in-differences (pilot vs "
     "control) is significant after Holm adjustment across the measure's metrics and points the right way; the p "
     "adjusted is the DiD's headline p: the restricted wild-cluster bootstrap p with fewer than 30 branches, else the "
     "cluster-SE t test (the table names both). Without control branches the pilot branches' before/after change is "
     "judged the same way and reported as weaker evidence: it cannot separate the measure from a change every branch "
     "saw. 'No evidence of change' otherwise. The control branches' own before/after change is reported beside it.")),
    ("REC-MEASURE", N_("Recommendation: measure"), N_("On each measure's first (primary) metric. DiD improved without a "
     "significant change in the control branches: roll out to the other branches; improved but the control branches "
     "changed too, or no evidence: review before extending; worsened: stop and review its design. Pilot branches only "
     "(no control): improved: confirm with control branches before a roll-out; no evidence: review before extending; "
     "worsened: review its design before continuing. Sustained-effect comparison: improved: continue; no evidence: "
     "continue and review, the quarters cannot show its introduction effect; worsened: review. Planned: evaluate once a "
     "quarter after its start is reported. Not testable: the reason and the data an evaluation needs.")),
    ("REC-STAFF", N_("Recommendation: staffing"), N_("Per branch, the hours where Erlang C needs more counters than are open "
     "and the hours with spare counters (needed < used − 0.5). The branches with the most counters missing (at most three) "
     "are named, with their spare hours to move counters from; when no branch is short, the branches with spare counters "
     "are named instead; when neither, nothing is said.")),
    ("REC-FOCUS", N_("Recommendation: focus"), N_("The priority dimensions become the focus of the next quarter's improvement plan.")),
    ("REC-TARGET", N_("Recommendation: targets"), N_("Targets not met, or not distinguishable from their threshold, stay on the "
     "plan with the gap stated.")),
]


_RULE_VALUES = {"PROBLEM-PROCESS": (f"{DEVIATION_PROBLEM_PCT:g}",), "PROBLEM-BRANCH": (f"{SATURATION_HIGH:g}",)}


def rules_table() -> pd.DataFrame:
    """The rules that generate the text (``rule``, ``name``, ``text``), in the active language (Appendix A)."""
    return pd.DataFrame([(r, i18n.tr(n), i18n.tr(t).format(*_RULE_VALUES.get(r, ()))) for r, n, t in _RULE_TEXTS],
                        columns=["rule", "name", "text"])


#: The rules in English (the documentation and the tests read them; the report shows :func:`rules_table`).
RULES = rules_table()
