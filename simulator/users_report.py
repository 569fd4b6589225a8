"""The practices' smartcard holders as a Care Identity Management "Users report" export."""

from __future__ import annotations

import csv
import io
import random
from collections import Counter
from dataclasses import dataclass, field

from simulator.fleet import Fleet
from simulator.organisations import Practice

HEADER = (
    "User ID",
    "Surname",
    "Forename",
    "Organisation Code",
    "Organisation Name",
    "Role Code",
    "Activity Codes",
)
# Any one of these at a practice's ODS code opens its PCN appointments dashboard.
GRANTING_CODES = ("B0360", "B0258", "B0945", "B0560")
GRANTING_WEIGHTS = (6, 2, 1, 1)
OTHER_CODES = ("B0264", "B0572", "B0068", "B0082", "B1300")
ROLE_CODES = ("R8000", "R8008", "R0260", "R8003")
MANAGER_ROLE = "R8008"
FORENAMES = (
    "Aisha", "Amelia", "Chloe", "David", "Emma", "Fatima", "Gareth", "Hannah", "Imran", "James",
    "Kate", "Liam", "Mohammed", "Niamh", "Oliver", "Priya", "Rhys", "Sarah", "Siân", "Tom",
    "Zoë", "Chidi", "Joanne", "Raj",
)  # fmt: skip
SURNAMES = (
    "Ahmed", "Brown", "Chaudhry", "Davies", "Evans", "Green", "Hughes", "Jones", "Khan", "Lewis",
    "Murphy", "Nowak", "O'Brien", "Okafor", "Patel", "Roberts", "Singh", "Smith", "Taylor",
    "Thomas", "Walker", "Williams", "Wright", "Ó Briain",
)  # fmt: skip
GRANTED_SHARE = 0.85  # of a user's places at a practice that has granted staff at all
NO_CODES_SHARE = 0.3  # of the places without a granting code: no activity codes at all
SHARED_USER_SHARE = 0.1  # practice managers who cover two or three practices
ROW_PER_CODE_SHARE = 0.05  # users whose codes the export puts one to a row
LOWER_CASE_ROWS = 2


@dataclass(slots=True)
class _User:
    user_id: str
    surname: str
    forename: str
    places: list[tuple[Practice, str, list[str]]] = field(default_factory=list)


def _codes(rng: random.Random, granted: bool) -> list[str]:
    if granted:
        codes = rng.choices(GRANTING_CODES, weights=GRANTING_WEIGHTS, k=rng.choice((1, 1, 2)))
        codes += rng.sample(OTHER_CODES, rng.choice((0, 0, 1, 2)))
    elif rng.random() < NO_CODES_SHARE:
        codes = []
    else:
        codes = rng.sample(OTHER_CODES, rng.choice((1, 1, 2)))
    return sorted(set(codes))


def _users(rng: random.Random, fleet: Fleet) -> list[_User]:
    hosts = Counter(h.practice.code for h in fleet)
    practices = sorted(
        (p for p in fleet.practices.values() if p.status == "A"), key=lambda p: p.code
    )
    # One practice in ~15 has nobody granted, so dashboards have gaps to show.
    gaps = {p.code for p in rng.sample(practices, round(len(practices) / 15))}
    ids: set[str] = set()
    users: list[_User] = []
    local: dict[str, list[_User]] = {}
    for practice in practices:
        count = max(2, min(8, round(hosts[practice.code] / 2) + rng.randint(-1, 1)))
        for _ in range(count):
            user_id = str(rng.randrange(10**11, 10**12))
            while user_id in ids:
                user_id = str(rng.randrange(10**11, 10**12))
            ids.add(user_id)
            user = _User(user_id, rng.choice(SURNAMES), rng.choice(FORENAMES))
            granted = practice.code not in gaps and rng.random() < GRANTED_SHARE
            user.places.append((practice, rng.choice(ROLE_CODES), _codes(rng, granted)))
            users.append(user)
            local.setdefault(practice.code, []).append(user)
        # Elsewhere someone always can: the gaps are only the practices chosen above.
        staff = [u.places[0][2] for u in local[practice.code]]
        if practice.code not in gaps and not any(set(c) & set(GRANTING_CODES) for c in staff):
            rng.choice(staff).insert(0, "B0360")
    # Practice managers also cover one or two other practices, preferably in their PCN.
    for manager in rng.sample(users, round(len(users) * SHARED_USER_SHARE)):
        home = manager.places[0][0]
        others = [p for p in practices if p is not home and p.pcn == home.pcn]
        others = others or [p for p in practices if p is not home]
        for practice in rng.sample(others, min(len(others), rng.choice((1, 1, 2)))):
            granted = practice.code not in gaps and rng.random() < GRANTED_SHARE
            manager.places.append((practice, MANAGER_ROLE, _codes(rng, granted)))
    return users


def users_report_csv(fleet: Fleet) -> bytes:
    """The CIM Users report for the fleet's open practices, as CIM and Excel save it: UTF-8
    with a BOM, ';' between cells, CRLF, and the untidiness real exports have."""
    rng = random.Random(f"cmscan-sim/{fleet.options.seed}/users-report")
    rows: list[list[str]] = []
    for user in _users(rng, fleet):
        one_per_code = rng.random() < ROW_PER_CODE_SHARE
        for practice, role, codes in user.places:
            start = [user.user_id, user.surname, user.forename, practice.code]
            start += [practice.name.upper(), role]
            if one_per_code and len(codes) > 1:
                rows += [[*start, code] for code in codes]
            else:
                rows.append([*start, "; ".join(codes)])
    coded = [row for row in rows if row[-1]]
    for row in rng.sample(coded, min(LOWER_CASE_ROWS, len(coded))):
        row[-1] = row[-1].lower()
    duplicate = rng.randrange(len(rows))
    rows.insert(duplicate + 1, list(rows[duplicate]))
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8-sig")
