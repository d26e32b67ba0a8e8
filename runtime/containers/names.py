"""Generated container names in Docker's style: ``<adjective>_<surname>``.

Our own word lists (scientists, engineers and hackers), not Docker's.
"""

from __future__ import annotations

import secrets

ADJECTIVES: tuple[str, ...] = (
    "admiring", "agitated", "amazing", "angry", "awesome", "blissful", "bold", "brave",
    "busy", "charming", "clever", "compassionate", "competent", "confident", "cool",
    "cranky", "crazy", "dazzling", "determined", "distracted", "dreamy", "eager", "ecstatic",
    "elastic", "elated", "elegant", "epic", "exciting", "fervent", "festive", "flamboyant",
    "focused", "friendly", "frosty", "funny", "gallant", "gifted", "goofy", "gracious",
    "great", "happy", "hardcore", "heuristic", "hopeful", "hungry", "infallible", "inspiring",
    "intelligent", "interesting", "jolly", "jovial", "keen", "kind", "laughing", "loving",
    "lucid", "magical", "modest", "musing", "mystifying", "naughty", "nervous", "nice",
    "nifty", "nostalgic", "objective", "optimistic", "peaceful", "pedantic", "pensive",
    "practical", "priceless", "quirky", "quizzical", "recursing", "relaxed", "reverent",
    "romantic", "sad", "serene", "sharp", "silly", "sleepy", "stoic", "strange", "sweet",
    "tender", "thirsty", "trusting", "unruffled", "upbeat", "vibrant", "vigilant",
    "vigorous", "wizardly", "wonderful", "xenodochial", "youthful", "zealous", "zen",
)

SURNAMES: tuple[str, ...] = (
    "agnesi", "albattani", "allen", "archimedes", "babbage", "banach", "bardeen", "bartik",
    "bell", "bhabha", "blackwell", "bohr", "boole", "borg", "bose", "brahmagupta", "brattain",
    "cannon", "carson", "cerf", "chandrasekhar", "chaplygin", "clarke", "cori", "curie",
    "darwin", "davinci", "dijkstra", "dirac", "einstein", "elion", "engelbart", "euclid",
    "euler", "faraday", "fermat", "fermi", "feynman", "franklin", "galileo", "gauss",
    "germain", "goldberg", "goodall", "hamilton", "hawking", "heisenberg", "hertz",
    "hodgkin", "hopper", "hypatia", "jackson", "jemison", "johnson", "kalam", "kepler",
    "khorana", "knuth", "kowalevski", "lamarr", "lamport", "leakey", "leavitt", "lovelace",
    "lumiere", "mayer", "mccarthy", "mcclintock", "meitner", "mendel", "mendeleev",
    "minsky", "mirzakhani", "morse", "napier", "nash", "newton", "nobel", "noether",
    "pascal", "pasteur", "payne", "perlman", "pike", "poincare", "ptolemy", "raman",
    "ramanujan", "ride", "ritchie", "rosalind", "saha", "sammet", "shannon", "shockley",
    "sinoussi", "stonebraker", "swartz", "tesla", "thompson", "torvalds", "turing",
    "volhard", "wiles", "williams", "wing", "wozniak", "wright", "yalow", "yonath",
)


def generate_name(retry: int = 0) -> str:
    """A random name; after the first collisions a digit is appended, as dockerd does."""
    name = f"{secrets.choice(ADJECTIVES)}_{secrets.choice(SURNAMES)}"
    if retry > 0:
        name += str(secrets.randbelow(10))
    return name


__all__ = ["ADJECTIVES", "SURNAMES", "generate_name"]
