#!/usr/bin/env python3
"""Write bioner's bundled sample corpus (src/bioner/data/sample/{train,dev,test}.txt).

Sentences are generated from templates and name lists written for bioner in the style of
PubMed abstracts; nothing is taken from any dataset.  Deterministic: rerunning it rewrites
the same files.
"""

from __future__ import annotations

import random
from pathlib import Path

CHEMICALS = [
    "cisplatin", "doxorubicin", "lithium", "haloperidol", "valproic acid", "acetylsalicylic acid",
    "5 - fluorouracil", "nitric oxide", "gentamicin", "amiodarone", "methotrexate", "tamoxifen",
    "carbamazepine", "isoniazid", "cyclosporine", "warfarin", "morphine", "ketamine", "caffeine",
    "dexamethasone", "sodium valproate", "all - trans retinoic acid", "calcium carbonate",
    "vitamin D3", "ethanol", "nicotine", "metformin", "propranolol", "clozapine", "heparin",
    "L - dopa", "bupivacaine", "streptozotocin", "paracetamol", "hydrogen peroxide",
]
DISEASES = [
    "hepatotoxicity", "acute renal failure", "myocardial infarction", "seizures", "Parkinson 's disease",
    "deep vein thrombosis", "drug - induced liver injury", "neuroleptic malignant syndrome",
    "hypertension", "cardiomyopathy", "nephrotoxicity", "agranulocytosis", "diabetes", "bradycardia",
    "tardive dyskinesia", "ventricular tachycardia", "peripheral neuropathy", "breast cancer",
    "acute myeloid leukemia", "hypotension", "ototoxicity", "depression", "pulmonary fibrosis",
    "status epilepticus", "Stevens - Johnson syndrome", "hyperkalemia", "liver cirrhosis",
    "schizophrenia", "neural tube defects", "memory impairment", "chronic kidney disease",
    "thrombocytopenia", "cataract", "urinary bladder cancer", "delirium",
]
TEMPLATES = [
    "Treatment with {C} was associated with {D} in {N} patients .",
    "We report a case of {D} after long - term use of {C} .",
    "{C} reduced the incidence of {D} compared with placebo .",
    "The risk of {D} increased when {C} was combined with {C2} .",
    "Patients with {D} received {C} at a dose of {N} mg / kg .",
    "No cases of {D} were observed in the {C} group .",
    "{C} is widely used in the management of {D} .",
    "Serum levels of {C} were measured in {N} children with {D} .",
    "These findings suggest that {C} may protect against {D} .",
    "The mechanism of {C} - induced {D} remains unclear .",
    "{D} and {D2} were the most frequent adverse events of {C} .",
    "Rats given {C} developed {D} within {N} days .",
    "Withdrawal of {C} led to resolution of {D} .",
    "Pretreatment with {C2} attenuated {C} - induced {D} in mice .",
    "A {N} - year - old woman developed {D} during therapy with {C} .",
    "Blood samples were collected at baseline and after {N} weeks .",
    "The study enrolled {N} participants from three centres .",
    "Incidence of {D} did not differ between groups ( P = 0 . {N} ) .",
    "{C} and {C2} showed similar efficacy in {D} .",
    "Chronic exposure to {C} is a known risk factor for {D} .",
]


HELD_OUT = 7  # the last names of each list appear in test only, so test F1 measures generalisation


def tokens_and_tags(template: str, rng: random.Random, held_out: bool) -> tuple[list[str], list[str]]:
    chems = CHEMICALS if held_out else CHEMICALS[:-HELD_OUT]
    diss = DISEASES if held_out else DISEASES[:-HELD_OUT]
    chem = rng.sample(chems, 2)
    dis = rng.sample(diss, 2)
    fill = {"{C}": (chem[0], "Chemical"), "{C2}": (chem[1], "Chemical"),
            "{D}": (dis[0], "Disease"), "{D2}": (dis[1], "Disease")}
    tokens, tags = [], []
    for piece in template.split():
        if piece in fill:
            name, label = fill[piece]
            words = name.split()
            tokens += words
            tags += ["B-" + label] + ["I-" + label] * (len(words) - 1)
        elif piece == "{N}":
            tokens.append(str(rng.randint(2, 90)))
            tags.append("O")
        else:
            tokens.append(piece)
            tags.append("O")
    if tokens[0][0].islower():
        tokens[0] = tokens[0][0].upper() + tokens[0][1:]
    return tokens, tags


def main() -> None:
    rng = random.Random(20261129)
    out = Path(__file__).resolve().parents[1] / "src" / "bioner" / "data" / "sample"
    out.mkdir(parents=True, exist_ok=True)
    sizes = {"train": 240, "dev": 60, "test": 60}
    for split, n in sizes.items():
        lines = []
        for _ in range(n):
            tokens, tags = tokens_and_tags(rng.choice(TEMPLATES), rng, split == "test")
            lines += [f"{t}\t{g}" for t, g in zip(tokens, tags)] + [""]
        (out / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"{split}: {n} sentences")


if __name__ == "__main__":
    main()
