from typing import *
from typing import Literal, Protocol, TypedDict
