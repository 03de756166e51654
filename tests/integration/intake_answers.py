"""A client's valid answers to the whole EB-1A questionnaire, in the order it asks them."""

from __future__ import annotations

DETAILS = "Described in full, with the documents to prove it."

BASIC = [
    ("full_name", "Maria Ivanova"),
    ("email", "maria@example.org"),
    ("phone", "+1 555 123 4567"),
    ("date_of_birth", "1985-04-03"),
    ("country_of_birth", "Bulgaria"),
    ("country_of_citizenship", "Bulgaria"),
    ("country_of_residence", "Canada"),
    ("us_immigration_status", "none"),
]
FIELD = [
    ("field_of_endeavour", "Computational biology"),
    ("specialisation", "Protein folding"),
    ("years_in_field", "12"),
    ("us_plans", "Lead a research group at a university."),
]
EDUCATION = [
    ("highest_degree", "doctorate"),
    ("field_of_study", "Biophysics"),
    ("institution", "University of Sofia"),
    ("degree_year", "2012"),
]
EMPLOYMENT = [
    ("current_employer", "Acme Labs"),
    ("job_title", "Principal scientist"),
    ("employed_since", "2019-04"),
    ("previous_positions", "/skip"),
]
CLAIMED = ("awards", "published_material", "judging", "scholarly_articles")
EVIDENCE_KEYS = (
    "awards",
    "memberships",
    "published_material",
    "judging",
    "original_contributions",
    "scholarly_articles",
    "exhibitions",
    "leading_role",
    "high_salary",
    "commercial_success",
    "one_time_achievement",
)
EVIDENCE = [
    pair
    for key in EVIDENCE_KEYS
    for pair in ([(key, "yes"), (f"{key}_details", DETAILS)] if key in CLAIMED else [(key, "no")])
]
HISTORY = [("prior_us_filings", "no"), ("visa_refusals", "yes"), ("visa_refusals_details", DETAILS), ("prior_eb_petitions", "no")]

ALL = BASIC + FIELD + EDUCATION + EMPLOYMENT + EVIDENCE + HISTORY
FIRST_FOUR_BLOCKS = BASIC + FIELD + EDUCATION + EMPLOYMENT
