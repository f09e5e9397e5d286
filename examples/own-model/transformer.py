"""A TransformerEncoder classifier of character sequences: the shipped names as windows of
`context` characters, classified by the character that comes next. Token and position
embeddings, torch's TransformerEncoder, the last position's output, a linear head."""
import torch
from torch import nn


class SequenceClassifier(nn.Module):
    def __init__(self, vocab: int, context: int, d_model: int, heads: int, layers: int, num_classes: int):
        super().__init__()
        self.tokens = nn.Embedding(vocab, d_model)
        self.positions = nn.Embedding(context, d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=2 * d_model, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, x):
        positions = torch.arange(x.shape[1], device=x.device)
        h = self.encoder(self.tokens(x) + self.positions(positions))
        return self.head(self.norm(h[:, -1]))


def build(num_classes: int, input_shape: tuple, d_model: int = 32, heads: int = 4, layers: int = 2) -> nn.Module:
    """Names data: the characters are the classes, so the vocabulary is num_classes."""
    return SequenceClassifier(num_classes, input_shape[0], d_model, heads, layers, num_classes)
